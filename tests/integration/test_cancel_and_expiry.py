"""manage/cancel and expiry through the real API, broker and database: a cancelled message never
reaches the provider, a cancel racing a due message is exactly one of cancelled or sent once,
and an expired record ends FAILED `expired` without a dead letter and without a late send."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from shared.db.base import utcnow
from shared.domain import Channel
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.pipeline import publish_delivery
from shared.records import Content, NotificationRecord
from shared.settings import Settings
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure_sendgrid,
    dead_letters,
    ok_rpc,
    rpc,
    wait_final_status,
)
from tests.integration.time_support import records_of, subscriber
from tests.support import System, Tenant, wait_for


def _mail(**extra: Any) -> dict[str, Any]:
    return {"userId": "u1", "channel": "EMAIL", "content": {"title": "Hi", "body": "x"}, **extra}


async def _email_tenant(tenant: Tenant, sendgrid: FakeSendGrid) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await subscriber(tenant, "u1", email="u1@example.com")


async def test_a_cancelled_delayed_send_never_reaches_the_provider(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_tenant(tenant, sendgrid)
    sent = await ok_rpc(tenant, "manage/send-delayed", _mail(delaySeconds=2))
    txn = sent["transactionId"]
    cancelled = await ok_rpc(tenant, "manage/cancel", {"transactionId": txn})
    assert cancelled == {"transactionId": txn, "cancelled": 1, "notCancelled": []}
    # A control sent after it with the same delay arrives: the parked message came and went.
    control = await ok_rpc(tenant, "manage/send-delayed", _mail(delaySeconds=2))
    assert (await wait_final_status(tenant, control["transactionId"]))["result"] == "DELIVERED"
    status = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": txn})
    assert status["result"] == "CANCELLED"
    assert len(sendgrid.mails) == 1  # the control only
    [record] = await records_of(system, tenant, txn)
    assert record["status"] == "CANCELLED"
    assert "cancelled_at" in record

    again = await rpc(tenant, "manage/cancel", {"transactionId": txn})
    assert again.status_code == 409, again.text
    assert again.json()["data"]["notCancelled"][0]["result"] == "CANCELLED"
    delivered = await rpc(tenant, "manage/cancel", {"transactionId": control["transactionId"]})
    assert delivered.status_code == 409
    assert delivered.json()["data"]["notCancelled"][0]["result"] == "DELIVERED"
    unknown = await rpc(tenant, "manage/cancel", {"transactionId": "txn_nope"})
    assert unknown.status_code == 404


async def test_cancel_of_a_bulk_cancels_what_has_not_started(
    system: System, tenant: Tenant
) -> None:
    for user in ("a", "b"):
        await subscriber(tenant, user)
    sent = await ok_rpc(
        tenant,
        "manage/send-bulk",
        {"userIds": ["a", "b"], "channel": "IN_APP", "content": {"body": "x"}, "delaySeconds": 60},
    )
    answer = await ok_rpc(tenant, "manage/cancel", {"transactionId": sent["transactionId"]})
    assert answer["cancelled"] == 2
    records = await records_of(system, tenant, sent["transactionId"])
    assert {r["status"] for r in records} == {"CANCELLED"}


async def test_cancel_racing_a_due_message_is_cancelled_or_sent_once(
    system: System, settings: Settings, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_tenant(tenant, sendgrid)
    db = system.db
    assert db is not None
    broker = Broker(
        url=settings.rabbitmq_url, topology=Topology(settings.prefix), publish_timeout_s=5
    )
    await broker.connect()
    rounds = 12
    outcomes: dict[str, bool] = {}
    try:
        for i in range(rounds):
            record = NotificationRecord.new(
                tenant_id=tenant.tenant_id,
                channel=Channel.EMAIL,
                recipient="u1",
                source="test",
                content=Content(title=f"race {i}", body="x"),
                deliver_at=utcnow(),  # due now: the message and the cancel race for it
            )
            await db.notifications.insert(record)
            _, answer = await asyncio.gather(
                publish_delivery(broker, record, delay_s=0),
                rpc(tenant, "manage/cancel", {"transactionId": record.transaction_id}),
            )
            assert answer.status_code in (200, 409), answer.text
            outcomes[record.id] = answer.status_code == 200
    finally:
        await broker.close()

    async def settled() -> bool:
        docs = [d async for d in db.notifications.col.find({"_id": {"$in": list(outcomes)}})]
        return all(d["status"] in ("CANCELLED", "DELIVERED") for d in docs)

    await wait_for(settled, timeout_s=20, what="every raced record to settle")
    sent_ids = [m["custom_args"]["notification_id"] for m in sendgrid.mails]
    for notification_id, was_cancelled in outcomes.items():
        assert sent_ids.count(notification_id) == (0 if was_cancelled else 1), notification_id
    print(f"cancel won {sum(outcomes.values())} of {rounds} races")


async def test_expiry_fields_are_validated(system: System, tenant: Tenant) -> None:
    cases = [
        (_mail(ttlSeconds=10, expiresAt="2030-01-01T00:00:00Z"), "give expiresAt or ttlSeconds"),
        (_mail(ttlSeconds=0), "ttlSeconds must be between 1 and"),
        (_mail(expiresAt="2030-01-01T00:00:00"), "expiresAt must include a time zone"),
        (_mail(expiresAt="2020-01-01T00:00:00Z"), "expiresAt must be after the time"),
    ]
    for body, message in cases:
        response = await rpc(tenant, "manage/send", body)
        assert response.status_code == 400, response.text
        assert any(message in e for e in response.json()["error"]), (message, response.json())
    late = (utcnow() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    response = await rpc(tenant, "manage/send-delayed", _mail(delaySeconds=3600, expiresAt=late))
    assert response.status_code == 400  # expires before it is due
    ok = await ok_rpc(tenant, "manage/send-delayed", _mail(delaySeconds=60, ttlSeconds=30))
    assert ok["expiresAt"] is not None
    [record] = await records_of(system, tenant, ok["transactionId"])
    assert (record["expires_at"] - record["deliver_at"]).total_seconds() == 30


async def test_a_record_whose_retries_would_outlive_it_fails_expired_without_dlq(
    system: System, settings: Settings, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_tenant(tenant, sendgrid)
    sendgrid.script_error(503, "Service Unavailable", times=100)
    sent = await ok_rpc(tenant, "manage/send", _mail(ttlSeconds=2))
    status = await wait_final_status(tenant, sent["transactionId"], timeout_s=20)
    assert (status["result"], status["failureReason"]) == ("FAILED", "expired")
    calls = len(sendgrid.requests)
    assert calls >= 1
    [record] = await records_of(system, tenant, sent["transactionId"])
    assert "dead_lettered_at" not in record
    assert record["completed_at"] <= record["expires_at"]  # decided, not sent late
    await asyncio.sleep(2.5)  # long enough for any retry the record could still have had
    assert len(sendgrid.requests) == calls
    letters = await dead_letters(settings.rabbitmq_url, Topology(settings.prefix), Channel.EMAIL)
    assert all(body["notification_id"] != record["_id"] for _, body in letters)


async def test_a_message_arriving_after_expiry_is_not_sent(
    system: System, settings: Settings, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_tenant(tenant, sendgrid)
    assert system.db is not None
    now = utcnow()
    record = NotificationRecord.new(
        tenant_id=tenant.tenant_id,
        channel=Channel.EMAIL,
        recipient="u1",
        source="test",
        content=Content(title="stale", body="x"),
        expires_at=now - timedelta(seconds=1),
    )
    await system.db.notifications.insert(record)
    broker = Broker(
        url=settings.rabbitmq_url, topology=Topology(settings.prefix), publish_timeout_s=5
    )
    await broker.connect()
    try:
        await publish_delivery(broker, record)
    finally:
        await broker.close()
    status = await wait_final_status(tenant, record.transaction_id)
    assert (status["result"], status["failureReason"]) == ("FAILED", "expired")
    assert sendgrid.requests == []
