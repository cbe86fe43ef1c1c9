"""The maintenance sweep: every record whose message went missing is published again, once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aio_pika

from shared.db.base import Doc, utcnow
from shared.domain import Channel, Status
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.integration.helpers import ok_rpc
from tests.records import record_doc, stored_doc
from tests.support import System, Tenant, delete_broker_objects, wait_for
from workers.maintenance import Maintenance


def _record(tenant: Tenant, label: str, **fields: Any) -> Doc:
    return record_doc(
        tenant_id=tenant.tenant_id,
        transaction_id=f"txn_{label}",
        content={"title": label, "body": label},
        **fields,
    )


async def test_two_sweepers_republish_each_lost_record_exactly_once(
    settings: Settings, system: System, tenant: Tenant
) -> None:
    assert system.db is not None
    db = system.db
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {}})
    now = utcnow()
    ago = now - timedelta(seconds=60)
    lost = {
        "unpublished": _record(
            tenant, "unpublished", queued_at=ago, created_at=ago, updated_at=ago
        ),
        "lease": _record(
            tenant,
            "lease",
            status=Status.PROCESSING.value,
            worker="dead-worker",
            lease_until=now - timedelta(seconds=10),
            enqueued_at=ago,
        ),
        "retry": _record(
            tenant,
            "retry",
            status=Status.RETRYING.value,
            next_attempt_at=now - timedelta(seconds=10),
            attempt_count=1,
            enqueued_at=ago,
        ),
        "delayed": _record(
            tenant,
            "delayed",
            status=Status.DELAYED.value,
            deliver_at=now - timedelta(seconds=10),
        ),
    }
    left_alone = {
        "fresh": _record(tenant, "fresh"),  # its API may still be waiting for the confirm
        "live_lease": _record(
            tenant,
            "live_lease",
            status=Status.PROCESSING.value,
            worker="busy-worker",
            lease_until=now + timedelta(seconds=60),
            enqueued_at=ago,
        ),
        "future_retry": _record(
            tenant,
            "future_retry",
            status=Status.RETRYING.value,
            next_attempt_at=now + timedelta(seconds=60),
            enqueued_at=ago,
        ),
    }
    await db.notifications.col.insert_many([*lost.values(), *left_alone.values()])

    brokers = [
        Broker(
            url=settings.rabbitmq_url,
            topology=Topology(settings.prefix),
            publish_timeout_s=settings.publish_timeout_s,
        )
        for _ in range(2)
    ]
    try:
        for broker in brokers:
            await broker.connect()
        reports = await asyncio.gather(
            *(Maintenance(db=db, broker=b, settings=settings).sweep() for b in brokers)
        )
    finally:
        for broker in brokers:
            await broker.close()

    taken = [i for report in reports for i in report.all_ids()]
    mine = {d["_id"] for d in lost.values()}
    assert sorted(i for i in taken if i in mine) == sorted(mine)  # each once, by one sweeper
    assert not {d["_id"] for d in left_alone.values()} & set(taken)
    by_case = {case: ids for report in reports for case, ids in report.counts().items() if ids}
    assert set(by_case) == {"unpublished", "expired_leases", "overdue_retries", "overdue_scheduled"}

    async def delivered() -> bool:
        docs = [await stored_doc(db, tenant_id=tenant.tenant_id, notification_id=i) for i in mine]
        return all(d is not None and d["status"] == Status.DELIVERED.value for d in docs)

    await wait_for(delivered, timeout_s=15, what="the swept records to be delivered")
    inbox = [d async for d in db.inbox.col.find({"tenant_id": tenant.tenant_id})]
    assert sorted(d["title"] for d in inbox) == sorted(lost)
    for key, doc in left_alone.items():
        stored = await stored_doc(db, tenant_id=tenant.tenant_id, notification_id=doc["_id"])
        assert stored is not None
        assert stored["status"] == doc["status"], key


async def test_the_sweep_leaves_a_queued_record_alone_while_its_queue_holds_messages(
    settings: Settings, system: System, tenant: Tenant
) -> None:
    """No `enqueued_at` stamp tells a lost message from one waiting behind a backlog: the
    sweep publishes an untouched QUEUED record only once its channel's queue is empty."""
    assert system.db is not None
    db = system.db
    ago = utcnow() - timedelta(seconds=60)
    doc = _record(tenant, "waiting", queued_at=ago, created_at=ago, updated_at=ago)
    await db.notifications.col.insert_one(doc)
    # A topology of its own that no worker consumes, so its in-app queue keeps a backlog.
    topology = Topology(f"{settings.prefix}bk")
    broker = Broker(
        url=settings.rabbitmq_url, topology=topology, publish_timeout_s=settings.publish_timeout_s
    )
    await broker.connect()
    try:
        queue_name = topology.queue(Channel.IN_APP)
        channel = await broker.connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), queue_name
        )
        maintenance = Maintenance(db=db, broker=broker, settings=settings)
        first = await maintenance.sweep()
        assert doc["_id"] not in first.unpublished  # it may be waiting behind that message

        queue = await channel.declare_queue(queue_name, passive=True)
        await queue.purge()
        second = await maintenance.sweep()
        assert doc["_id"] in second.unpublished  # nothing left ahead of it: its message is lost
        stored = await stored_doc(db, tenant_id=tenant.tenant_id, notification_id=doc["_id"])
        assert stored is not None
        assert stored["sweep_until"] > utcnow()  # locked: taken once
        third = await maintenance.sweep()
        assert doc["_id"] not in third.unpublished
    finally:
        await db.notifications.col.delete_one({"_id": doc["_id"]})
        await broker.close()
        await delete_broker_objects(settings.rabbitmq_url, topology)
