"""The declared topology, the delay levels and the lease guard, on the real broker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest

from shared.db.base import Doc, utcnow
from shared.domain import Channel, Status
from shared.messaging.broker import Broker
from shared.messaging.messages import deliver_message
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.integration.helpers import ok_rpc, rpc
from tests.records import record_doc, stored_doc
from tests.support import System, Tenant, wait_for


async def test_queues_exist_with_their_arguments(system: System, settings: Settings) -> None:
    topology = Topology(settings.prefix)
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        # Same arguments: an idempotent re-declare. Different ones: the broker refuses.
        await channel.declare_queue(
            topology.queue(Channel.EMAIL),
            durable=True,
            arguments={"x-queue-version": 2, "x-max-priority": 5},
        )
        await channel.declare_queue(
            topology.dlq(Channel.PUSH), durable=True, arguments={"x-queue-type": "quorum"}
        )
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await channel.declare_queue(
                topology.queue(Channel.EMAIL),
                durable=True,
                arguments={"x-queue-version": 2, "x-max-priority": 10},
            )
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await channel.declare_queue(topology.dlq(Channel.PUSH), durable=True)
        channel = await connection.channel()
        for name in topology.all_queues():
            await channel.declare_queue(name, passive=True)  # every one is there


@pytest.fixture
async def broker(system: System, settings: Settings) -> AsyncIterator[Broker]:
    """A publisher of our own, as another API instance would be."""
    publisher = Broker(
        url=settings.rabbitmq_url, topology=Topology(settings.prefix), publish_timeout_s=5
    )
    await publisher.connect()
    try:
        yield publisher
    finally:
        await publisher.close()


async def _in_app_record(system: System, tenant: Tenant, **fields: Any) -> Doc:
    await rpc(tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {}})
    record = record_doc(
        tenant_id=tenant.tenant_id,
        transaction_id="txn-x",
        correlation_id="corr-x",
        **fields,
    )
    assert system.db is not None
    await system.db.notifications.col.insert_one(record)
    return record


def _body(record: Doc) -> dict[str, Any]:
    return deliver_message(
        notification_id=record["_id"],
        tenant_id=record["tenant_id"],
        channel=record["channel"],
        attempt=1,
    )


async def _status(system: System, tenant: Tenant, notification_id: str) -> Doc:
    assert system.db is not None
    doc = await stored_doc(system.db, tenant_id=tenant.tenant_id, notification_id=notification_id)
    assert doc is not None
    return doc


async def test_delayed_message_arrives_after_its_delay(
    broker: Broker, system: System, settings: Settings, tenant: Tenant
) -> None:
    record = await _in_app_record(system, tenant)
    published = time.monotonic()
    # 3 s = binary 11: the message waits in level 1 (2 s), then level 0 (1 s).
    await broker.publish_notification(
        channel=Channel.IN_APP,
        body=_body(record),
        priority=1,
        correlation_id=None,
        delay_s=3,
    )

    async def delivered() -> dict[str, object] | None:
        doc = await _status(system, tenant, str(record["_id"]))
        return doc if doc["status"] == Status.DELIVERED.value else None

    await wait_for(delivered, timeout_s=20, what="the delayed message")
    assert time.monotonic() - published >= 2.9


async def test_a_live_lease_parks_the_message_until_it_expires(
    broker: Broker, system: System, settings: Settings, tenant: Tenant
) -> None:
    lease_until = utcnow() + timedelta(seconds=2)
    record = await _in_app_record(
        system, tenant, status=Status.PROCESSING.value, worker="ghost", lease_until=lease_until
    )
    await broker.publish_notification(
        channel=Channel.IN_APP, body=_body(record), priority=1, correlation_id=None
    )

    async def delivered() -> dict[str, object] | None:
        doc = await _status(system, tenant, str(record["_id"]))
        return doc if doc["status"] == Status.DELIVERED.value else None

    doc = await wait_for(delivered, timeout_s=20, what="the parked message to be taken over")
    assert doc["worker"] != "ghost"
    processing_at = doc["processing_at"]
    assert isinstance(processing_at, type(lease_until))
    assert processing_at >= lease_until  # nobody touched it while the lease was live


async def test_a_delayed_record_is_claimed_only_once_due(
    broker: Broker, system: System, settings: Settings, tenant: Tenant
) -> None:
    deliver_at = utcnow() + timedelta(seconds=2)
    early = await _in_app_record(system, tenant, status=Status.DELAYED.value, deliver_at=deliver_at)
    due = await _in_app_record(
        system, tenant, status=Status.SCHEDULED.value, deliver_at=utcnow() - timedelta(seconds=1)
    )
    for record in (early, due):  # both messages arrive now
        await broker.publish_notification(
            channel=Channel.IN_APP, body=_body(record), priority=1, correlation_id=None
        )

    async def delivered(record: Doc) -> Doc | None:
        doc = await _status(system, tenant, str(record["_id"]))
        return doc if doc["status"] == Status.DELIVERED.value else None

    await wait_for(lambda: delivered(due), timeout_s=10, what="the due record")
    doc = await wait_for(lambda: delivered(early), timeout_s=20, what="the early one, once due")
    # The early message was parked until `deliver_at`, not delivered ahead of it.
    assert doc["processing_at"] >= deliver_at


async def test_a_final_record_is_never_sent_again(
    broker: Broker, system: System, settings: Settings, tenant: Tenant
) -> None:
    record = await _in_app_record(system, tenant, status=Status.CANCELLED.value)
    await broker.publish_notification(
        channel=Channel.IN_APP, body=_body(record), priority=1, correlation_id=None
    )
    # A second, live message behind it proves the first was consumed (and dropped).
    live = await ok_rpc(
        tenant, "manage/send", {"userId": "u1", "channel": "IN_APP", "content": {"body": "b"}}
    )
    db = system.db
    assert db is not None

    async def live_delivered() -> bool:
        docs = await db.notifications.find_by_transaction(
            tenant_id=tenant.tenant_id, transaction_id=live["transactionId"]
        )
        return docs[0].status is Status.DELIVERED

    await wait_for(live_delivered, what="the live message")
    doc = await _status(system, tenant, str(record["_id"]))
    assert doc["status"] == Status.CANCELLED.value
    assert doc["attempts"] == []
    # The guard itself, whatever the message timing: a final record cannot be claimed.
    claimed = await db.notifications.claim(
        tenant_id=tenant.tenant_id, notification_id=str(record["_id"]), worker="w", lease_s=60
    )
    assert claimed is False
    items = await db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id="u1")
    assert [i["body"] for i in items] == ["b"]
