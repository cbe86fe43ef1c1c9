"""Quiet hours through the real API, broker and database: `subscriberData.quietHours`
validated and shown; a PUSH inside the window deferred (DELAYED, `quiet_hours`) and delivered
when it ends, SYSTEM and IN_APP sent at once, a deferred one cancellable; a deferral whose
parked message is lost is re-published by the maintenance sweep. Window arithmetic (midnight,
DST) is unit-tested in tests/unit/test_quiet_hours.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.db.base import utcnow
from shared.domain import Status
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.records import DeliveryChange
from shared.settings import Settings
from shared.timefmt import iso_z
from tests.fakes.fcm import FakeFcm
from tests.integration.helpers import configure_fcm, ok_rpc, rpc, wait_final_status
from tests.integration.time_support import records_of
from tests.integration.workflow_support import push_device
from tests.records import record_doc, stored_doc
from tests.support import System, Tenant, wait_for
from workers.maintenance import Maintenance

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30: a zone whose minutes differ from UTC's


@pytest.mark.parametrize(
    ("quiet", "error"),
    [
        (
            {"start": "24:00", "end": "07:00"},
            "subscriberData.quietHours.start must be a time HH:MM from 00:00 to 23:59",
        ),
        (
            {"start": "22:00", "end": "7:00"},
            "subscriberData.quietHours.end must be a time HH:MM from 00:00 to 23:59",
        ),
        (
            {"start": "22:00", "end": "22:00"},
            "subscriberData.quietHours must not start and end at the same time",
        ),
        (
            {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"},
            "subscriberData.quietHours.timezone must be an IANA time zone such as America/New_York",
        ),
        (
            {"start": "22:00", "end": "07:00", "days": ["FUN"]},
            "subscriberData.quietHours.days[0] must be one of the following values: "
            "MON, TUE, WED, THU, FRI, SAT, SUN",
        ),
        (
            {"start": "22:00", "end": "07:00", "days": []},
            "subscriberData.quietHours.days must contain at least 1 items",
        ),
        ({"start": "22:00"}, "subscriberData.quietHours.end is required"),
        (
            {"start": "22:00", "end": "07:00", "from": "x"},
            "subscriberData.quietHours.from is not an allowed field",
        ),
        ("22:00-07:00", "subscriberData.quietHours must be an object"),
    ],
)
async def test_bad_quiet_hours_are_400_naming_the_field(
    tenant: Tenant, quiet: Any, error: str
) -> None:
    body = {"userId": "u1", "subscriberData": {"quietHours": quiet}}
    response = await rpc(tenant, "manage/create-subscriber", body)
    assert response.status_code == 400, response.text
    assert error in response.json()["error"]
    assert (await rpc(tenant, "manage/get-subscriber", {"userId": "u1"})).status_code == 404
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1"})
    response = await rpc(tenant, "manage/update-subscriber-data", body)
    assert response.status_code == 400
    assert error in response.json()["error"]


async def test_quiet_hours_are_stored_shown_replaced_and_removed(tenant: Tenant) -> None:
    weekend = {"start": "23:00", "end": "08:30", "timezone": "Europe/Paris", "days": ["FRI", "SAT"]}
    created = await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u1", "subscriberData": {"quietHours": weekend}},
    )
    assert created["subscriber"]["quietHours"] == weekend
    nightly = {"start": "22:00", "end": "07:00"}
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"quietHours": nightly}},
    )
    got = await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"})
    assert got["subscriber"]["quietHours"] == nightly  # replaced whole, not merged
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"firstName": "Ada"}},
    )
    got = await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"})
    assert got["subscriber"]["quietHours"] == nightly  # other updates leave it alone
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"quietHours": None}},
    )
    got = await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"})
    assert got["subscriber"]["quietHours"] is None


def _window_around_now() -> tuple[dict[str, str], datetime]:
    """A window in Kolkata's local time that holds now and ends at the next minute (or the one
    after, if the next is under 4 s away); its end as an instant."""
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=1 if (start + timedelta(minutes=1) - now).seconds >= 4 else 2)
    local = {"start": start.astimezone(KOLKATA), "end": end.astimezone(KOLKATA)}
    return {k: v.strftime("%H:%M") for k, v in local.items()}, end


async def _push(tenant: Tenant, category: str = "TRANSACTIONAL", channel: str = "PUSH") -> str:
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {
            "userId": "u1",
            "channel": channel,
            "category": category,
            "content": {"title": "Hi", "body": "Hello"},
        },
    )
    return str(sent["transactionId"])


@pytest.mark.timeout(120)
async def test_a_push_inside_quiet_hours_waits_for_their_end_then_is_delivered(
    system: System, tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    window, end = _window_around_now()
    # No zone of its own: the window is read in the subscriber's time zone.
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"timezone": "Asia/Kolkata", "quietHours": window}},
    )

    deferred = await _push(tenant)
    cancelled = await _push(tenant)

    async def delayed(txn: str) -> dict[str, Any] | None:
        [doc] = await records_of(system, tenant, txn)
        return doc if doc["status"] == Status.DELAYED.value else None

    doc = await wait_for(lambda: delayed(deferred), timeout_s=10, what="the push deferred")
    assert doc["failure_reason"] == "quiet_hours"
    assert doc["deliver_at"].replace(tzinfo=UTC) == end
    assert doc["attempt_count"] == 0  # a deferral is no attempt
    status = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": deferred})
    assert (status["result"], status["failureReason"], status["scheduledFor"]) == (
        "SENT",
        "quiet_hours",
        iso_z(end),
    )
    await wait_for(lambda: delayed(cancelled), timeout_s=10, what="the second push deferred")
    await ok_rpc(tenant, "manage/cancel", {"transactionId": cancelled})

    # SYSTEM and IN_APP are never deferred.
    system_push = await wait_final_status(tenant, await _push(tenant, "SYSTEM"))
    in_app = await wait_final_status(tenant, await _push(tenant, channel="IN_APP"))
    assert (system_push["result"], in_app["result"]) == ("DELIVERED", "DELIVERED")
    assert utcnow() < end, "the window ended before the checks: the machine is too slow"
    assert len(fcm.messages) == 1

    left_s = (end - utcnow()).total_seconds()
    started = time.monotonic()
    final = await wait_final_status(tenant, deferred, timeout_s=left_s + 30)
    assert time.monotonic() - started >= left_s - 1
    assert (final["result"], final["failureReason"]) == ("DELIVERED", None)
    [doc] = await records_of(system, tenant, deferred)
    assert doc["processing_at"].replace(tzinfo=UTC) >= end
    assert len(fcm.messages) == 2
    assert (await wait_final_status(tenant, cancelled))["result"] == "CANCELLED"


async def test_a_deferral_whose_parked_message_was_lost_is_published_by_the_sweep(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    """A worker recorded the deferral, then died before parking the message."""
    assert system.db is not None
    db = system.db
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1"})
    doc = record_doc(tenant_id=tenant.tenant_id, transaction_id="txn_quiet", enqueued_at=utcnow())
    await db.notifications.col.insert_one(doc)
    claimed = await db.notifications.claim_and_get(
        tenant_id=tenant.tenant_id, notification_id=doc["_id"], worker="dead-worker", lease_s=30
    )
    assert claimed is not None
    assert await db.notifications.defer(
        tenant_id=tenant.tenant_id,
        notification_id=doc["_id"],
        worker="dead-worker",
        deliver_at=utcnow() - timedelta(seconds=60),  # its window ended a minute ago
        change=DeliveryChange(failure_reason="quiet_hours", failure_detail="test"),
    )
    stored = await stored_doc(db, tenant_id=tenant.tenant_id, notification_id=doc["_id"])
    assert stored is not None
    assert (stored["status"], stored.get("lease_until"), stored.get("worker")) == (
        "DELAYED",
        None,
        None,
    )

    broker = Broker(
        url=settings.rabbitmq_url,
        topology=Topology(settings.prefix),
        publish_timeout_s=settings.publish_timeout_s,
    )
    await broker.connect()
    try:
        report = await Maintenance(db=db, broker=broker, settings=settings).sweep()
    finally:
        await broker.close()
    assert doc["_id"] in report.all_ids()
    status = await wait_final_status(tenant, "txn_quiet")
    assert (status["result"], status["failureReason"]) == ("DELIVERED", None)
