"""send-delayed, send-scheduled and send-bulk timing through the real API, broker and database:
the resolved `scheduledFor`, the DST rules with real zones, the limits, and delivery on time."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.db.base import utcnow
from tests.integration.helpers import ok_rpc, rpc, wait_final_status
from tests.integration.time_support import (
    inbox_of,
    next_transition,
    parse_z,
    records_of,
    subscriber,
)
from tests.support import System, Tenant

NEW_YORK = ZoneInfo("America/New_York")


def _body(user_id: str = "u1", **extra: Any) -> dict[str, Any]:
    return {
        "userId": user_id,
        "channel": "IN_APP",
        "content": {"title": "Follow-up", "body": "How did your workout go?"},
        **extra,
    }


async def test_send_delayed_is_delivered_after_its_delay(system: System, tenant: Tenant) -> None:
    await subscriber(tenant, "u1")
    before = utcnow()
    started = time.monotonic()
    sent = await ok_rpc(tenant, "manage/send-delayed", _body(delaySeconds=2))
    due = parse_z(sent["scheduledFor"])
    assert before + timedelta(seconds=2) <= due <= utcnow() + timedelta(seconds=2)
    [record] = await records_of(system, tenant, sent["transactionId"])
    assert record["status"] == "DELAYED"
    early = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": sent["transactionId"]}
    )
    assert (early["result"], early["scheduledFor"]) == ("SENT", sent["scheduledFor"])

    status = await wait_final_status(tenant, sent["transactionId"], timeout_s=20)
    assert status["result"] == "DELIVERED"
    assert time.monotonic() - started >= 1.9
    [record] = await records_of(system, tenant, sent["transactionId"])
    assert record["processing_at"] >= due  # claimed no earlier than due
    assert len(await inbox_of(system, tenant, "u1")) == 1


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        (0, "delaySeconds must be between 1 and 86400 seconds"),
        (86_401, "delaySeconds must be between 1 and 86400 seconds"),
        ("60", "delaySeconds must be a whole number"),
        (None, "delaySeconds is required"),
    ],
)
async def test_send_delayed_refuses_delays_out_of_range(
    system: System, tenant: Tenant, delay: Any, message: str
) -> None:
    body = _body() if delay is None else _body(delaySeconds=delay)
    response = await rpc(tenant, "manage/send-delayed", body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert system.db is not None
    assert await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id}) == 0


async def test_send_scheduled_with_a_timezone_is_wall_clock_there(
    system: System, tenant: Tenant
) -> None:
    # The seed's example shape: a Z written with a zone means wall-clock time in that zone.
    day = (utcnow() + timedelta(days=30)).date()
    sent = await ok_rpc(
        tenant,
        "manage/send-scheduled",
        _body(scheduledAt=f"{day}T09:00:00Z", timezone="America/New_York"),
    )
    expected = parse_z(sent["scheduledFor"]).astimezone(NEW_YORK)
    assert (expected.date(), expected.hour, expected.minute) == (day, 9, 0)
    [record] = await records_of(system, tenant, sent["transactionId"])
    assert record["status"] == "SCHEDULED"
    assert record["deliver_at"] == parse_z(sent["scheduledFor"])


async def test_dst_gap_moves_forward_and_overlap_takes_the_first(
    system: System, tenant: Tenant
) -> None:
    now = utcnow()
    spring = next_transition(NEW_YORK, forward=True, after=now)
    autumn = next_transition(NEW_YORK, forward=False, after=now)
    gap = await ok_rpc(
        tenant,
        "manage/send-scheduled",
        _body(scheduledAt=f"{spring.date()}T02:30:00", timezone="America/New_York"),
    )
    # 02:30 does not exist that night: moved forward by the hour-long gap, to 03:30 EDT.
    local = parse_z(gap["scheduledFor"]).astimezone(NEW_YORK)
    assert (local.date(), local.hour, local.minute) == (spring.date(), 3, 30)
    assert local.utcoffset() == timedelta(hours=-4)
    overlap = await ok_rpc(
        tenant,
        "manage/send-scheduled",
        _body(scheduledAt=f"{autumn.date()}T01:30:00", timezone="America/New_York"),
    )
    # 01:30 happens twice that night: the first one, still EDT (UTC-4).
    first = parse_z(overlap["scheduledFor"])
    assert first.astimezone(NEW_YORK).utcoffset() == timedelta(hours=-4)
    assert (first.hour, first.minute) == (5, 30)


async def test_without_timezone_offsets_are_absolute_and_naive_is_the_subscribers(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "tokyo", timezone="Asia/Tokyo")
    day = (utcnow() + timedelta(days=10)).date()
    absolute = await ok_rpc(
        tenant, "manage/send-scheduled", _body("tokyo", scheduledAt=f"{day}T09:00:00+02:00")
    )
    assert absolute["scheduledFor"] == f"{day}T07:00:00.000Z"
    local = await ok_rpc(
        tenant, "manage/send-scheduled", _body("tokyo", scheduledAt=f"{day}T09:00:00")
    )
    assert local["scheduledFor"] == f"{day}T00:00:00.000Z"  # 09:00 in Tokyo
    utc_default = await ok_rpc(
        tenant, "manage/send-scheduled", _body("nobody", scheduledAt=f"{day}T09:00:00")
    )
    assert utc_default["scheduledFor"] == f"{day}T09:00:00.000Z"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"scheduledAt": "2020-01-01T00:00:00Z"}, "scheduledAt is in the past"),
        ({"scheduledAt": "2099-01-01T00:00:00Z"}, "scheduledAt must be at most one year ahead"),
        ({"scheduledAt": "next tuesday"}, "scheduledAt must be an ISO-8601 date-time"),
        (
            {"scheduledAt": "2030-01-01T00:00:00", "timezone": "Mars/Olympus"},
            "timezone must be an IANA time zone",
        ),
        ({}, "scheduledAt is required"),
    ],
)
async def test_send_scheduled_refuses_bad_times(
    system: System, tenant: Tenant, extra: dict[str, Any], message: str
) -> None:
    response = await rpc(tenant, "manage/send-scheduled", _body(**extra))
    assert response.status_code == 400, response.text
    assert any(e.startswith(message) for e in response.json()["error"]), response.json()
    assert system.db is not None
    assert await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id}) == 0


async def test_a_scheduled_send_a_moment_ahead_is_delivered_then(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "u1")
    at = utcnow() + timedelta(seconds=2)
    sent = await ok_rpc(
        tenant, "manage/send-scheduled", _body(scheduledAt=at.isoformat().replace("+00:00", "Z"))
    )
    status = await wait_final_status(tenant, sent["transactionId"])
    assert status["result"] == "DELIVERED"
    assert parse_z(status["deliveredAt"]) >= at


async def test_send_bulk_with_a_naive_time_is_each_recipients_local_time(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "ny", timezone="America/New_York")
    await subscriber(tenant, "berlin", timezone="Europe/Berlin")
    day = (utcnow() + timedelta(days=20)).date()
    sent = await ok_rpc(
        tenant,
        "manage/send-bulk",
        {
            "userIds": ["ny", "berlin", "nobody"],
            "channel": "IN_APP",
            "content": {"title": "Campaign", "body": "9 am local"},
            "scheduledAt": f"{day}T09:00:00",
        },
    )
    by_user = {u: parse_z(t) for u, t in sent["scheduledForByUser"].items()}
    assert by_user["ny"].astimezone(ZoneInfo("America/New_York")).hour == 9
    assert by_user["berlin"].astimezone(ZoneInfo("Europe/Berlin")).hour == 9
    assert by_user["nobody"].hour == 9  # no profile: UTC
    assert sent["scheduledFor"] == min(sent["scheduledForByUser"].values())
    records = await records_of(system, tenant, sent["transactionId"])
    assert {r["recipient"]: r["deliver_at"] for r in records} == by_user
    assert {r["status"] for r in records} == {"SCHEDULED"}
    status = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": sent["transactionId"]}
    )
    assert status["result"] == "SENT"
    assert {r["userId"]: r["scheduledFor"] for r in status["recipients"]} == sent[
        "scheduledForByUser"
    ]


async def test_send_bulk_with_a_delay_is_delivered_after_it(system: System, tenant: Tenant) -> None:
    for user in ("a", "b"):
        await subscriber(tenant, user)
    sent = await ok_rpc(
        tenant,
        "manage/send-bulk",
        {
            "userIds": ["a", "b"],
            "channel": "IN_APP",
            "content": {"body": "later"},
            "delaySeconds": 1,
        },
    )
    assert "scheduledForByUser" not in sent  # one time for everyone
    status = await wait_final_status(tenant, sent["transactionId"])
    assert status["summary"] == {"DELIVERED": 2}
    for row in status["recipients"]:
        assert parse_z(row["deliveredAt"]) >= parse_z(sent["scheduledFor"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"delaySeconds": 5, "scheduledAt": "2030-01-01T00:00:00Z"}, "give delaySeconds or"),
        ({"timezone": "Europe/Berlin"}, "timezone is only meaningful with scheduledAt"),
        ({"delaySeconds": 100_000}, "delaySeconds must be between 1 and 86400 seconds"),
        ({"scheduledAt": "2020-01-01T09:00:00"}, "scheduledAt is in the past"),
    ],
)
async def test_send_bulk_refuses_bad_timing(
    system: System, tenant: Tenant, extra: dict[str, Any], message: str
) -> None:
    response = await rpc(
        tenant,
        "manage/send-bulk",
        {"userIds": ["a"], "channel": "IN_APP", "content": {"body": "x"}, **extra},
    )
    assert response.status_code == 400, response.text
    assert any(message in e for e in response.json()["error"]), response.json()
