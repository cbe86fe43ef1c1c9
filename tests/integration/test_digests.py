"""Digests through the real API, broker, database and digest worker: REGULAR, LOOK_BACK and
SCHEDULED, 200 concurrent events giving one delivery that counts 200, templates, cancelling an
event, and each validation rule."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from shared.db.base import utcnow
from tests.integration.helpers import ok_rpc, rpc, wait_final_status
from tests.integration.time_support import (
    digest_worker,
    inbox_of,
    parse_z,
    records_of,
    subscriber,
)
from tests.support import System, Tenant, wait_for

__all__ = ["digest_worker"]  # the module-scoped fixture, used by name below

pytestmark = pytest.mark.usefixtures("digest_worker")


def _event(title: str, *, user: str = "u1", **config: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "channel": "IN_APP",
        "category": "PRODUCT",
        "content": {"title": title, "body": f"{title} happened"},
        "digestConfig": {"digestKey": "coaching-updates", **config},
    }


def _digest_events(stage: str) -> float:
    value = REGISTRY.get_sample_value(
        "notify_digest_events_total", {"channel": "in_app", "stage": stage}
    )
    return value or 0.0


def _regular(title: str, window: int = 2, **extra: Any) -> dict[str, Any]:
    return _event(title, strategy="REGULAR", windowSeconds=window, **extra)


async def _wait_inbox(system: System, tenant: Tenant, user: str, count: int) -> list[Any]:
    async def arrived() -> list[Any] | None:
        items = await inbox_of(system, tenant, user)
        return items if len(items) >= count else None

    return await wait_for(arrived, timeout_s=20, what=f"{count} inbox item(s) for {user}")


async def test_regular_digest_sends_one_notification_counting_its_events(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "u1")
    counted = {stage: _digest_events(stage) for stage in ("accumulated", "flushed")}
    txns = [
        (await ok_rpc(tenant, "manage/send-with-digest", _regular(f"e{i}")))["transactionId"]
        for i in range(5)
    ]
    early = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": txns[0]})
    assert early["result"] == "SENT"
    digest_id = early["digestId"]
    [item] = await _wait_inbox(system, tenant, "u1", 1)
    assert (item["title"], item["body"]) == ("e4", "You have 5 new updates.")
    for txn in txns:
        status = await wait_final_status(tenant, txn)
        assert (status["result"], status["digestId"]) == ("DELIVERED", digest_id)
    [record] = await records_of(system, tenant, digest_id)
    assert record["idempotency_key"] == f"digest:{digest_id}"
    # The API and the digest worker run in this process: one registry shows both counters.
    assert _digest_events("accumulated") == counted["accumulated"] + 5
    assert _digest_events("flushed") == counted["flushed"] + 5
    # Events after the close open the next digest.
    later = await ok_rpc(tenant, "manage/send-with-digest", _regular("next"))
    status = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": later["transactionId"]}
    )
    assert status["digestId"] != digest_id


async def test_two_hundred_concurrent_events_give_one_delivery_counting_200(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "u1")
    window_s = 10  # long enough that 200 requests land in it even on a loaded machine
    started = time.monotonic()
    answers = await asyncio.gather(
        *(
            rpc(tenant, "manage/send-with-digest", _regular(f"c{i}", window=window_s))
            for i in range(200)
        )
    )
    sending_s = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 200
    assert sending_s < window_s, f"the 200 requests took {sending_s:.1f} s: not one window"
    db = system.db
    assert db is not None
    digests = [d async for d in db.digests.col.find({"tenant_id": tenant.tenant_id})]
    events = [e["transaction_id"] for d in digests for e in d["events"]]
    assert sorted(events) == sorted(a.json()["transactionId"] for a in answers)  # each once
    assert len(digests) == 1
    assert digests[0]["count"] == 200
    [item] = await _wait_inbox(system, tenant, "u1", 1)
    assert item["body"] == "You have 200 new updates."

    async def sent() -> bool:
        doc = await db.digests.col.find_one({"_id": digests[0]["_id"]})
        return doc is not None and doc["state"] == "SENT"

    await wait_for(sent, timeout_s=10, what="the digest to be marked sent")
    assert len(await inbox_of(system, tenant, "u1")) == 1


async def test_look_back_sends_a_lone_event_at_once_and_digests_a_burst(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "u1")
    body = _event("first", strategy="LOOK_BACK", windowSeconds=2, lookBackSeconds=30)
    first = await ok_rpc(tenant, "manage/send-with-digest", body)
    assert len(await records_of(system, tenant, first["transactionId"])) == 1  # sent at once
    second = await ok_rpc(
        tenant, "manage/send-with-digest", {**body, "content": {"title": "second", "body": "b"}}
    )
    third = await ok_rpc(
        tenant, "manage/send-with-digest", {**body, "content": {"title": "third", "body": "c"}}
    )
    assert await records_of(system, tenant, second["transactionId"]) == []  # digested
    items = await _wait_inbox(system, tenant, "u1", 2)
    assert sorted((i["title"], i["body"]) for i in items) == [
        ("first", "first happened"),
        ("third", "You have 2 new updates."),
    ]
    assert (await wait_final_status(tenant, third["transactionId"]))["result"] == "DELIVERED"


async def test_scheduled_digest_closes_at_the_next_cron_fire_in_the_subscribers_zone(
    system: System, tenant: Tenant
) -> None:
    await subscriber(tenant, "u1", timezone="America/New_York")
    sent = await ok_rpc(
        tenant,
        "manage/send-with-digest",
        _event("weekly", strategy="SCHEDULED", cronExpression="0 9 * * MON"),
    )
    status = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": sent["transactionId"]}
    )
    fire = parse_z(status["scheduledFor"]).astimezone(ZoneInfo("America/New_York"))
    assert (fire.weekday(), fire.hour, fire.minute) == (0, 9, 0)
    assert timedelta(0) < fire - utcnow() <= timedelta(days=7)
    explicit = await ok_rpc(
        tenant,
        "manage/send-with-digest",
        _event(
            "daily",
            user="u2",
            strategy="SCHEDULED",
            cronExpression="30 6 * * *",
            timezone="Asia/Tokyo",
        ),
    )
    status = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": explicit["transactionId"]}
    )
    fire = parse_z(status["scheduledFor"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (fire.hour, fire.minute) == (6, 30)


async def test_a_template_renders_the_count_and_the_events(system: System, tenant: Tenant) -> None:
    await subscriber(tenant, "u1")
    await ok_rpc(
        tenant,
        "manage/create-template",
        {
            "templateCode": "coaching_digest",
            "channel": "IN_APP",
            "title": "{{ digest.count }} coaching updates",
            "body": "{% for e in digest.events %}{{ e.title }}.{% endfor %}",
        },
    )
    for title in ("a", "b", "c"):
        await ok_rpc(
            tenant, "manage/send-with-digest", _regular(title, templateCode="coaching_digest")
        )
    [item] = await _wait_inbox(system, tenant, "u1", 1)
    assert (item["title"], item["body"]) == ("3 coaching updates", "a.b.c.")
    missing = await rpc(tenant, "manage/send-with-digest", _regular("x", templateCode="nope"))
    assert missing.status_code == 404


async def test_cancelling_events_and_a_digest_left_empty(system: System, tenant: Tenant) -> None:
    await subscriber(tenant, "u1")
    await subscriber(tenant, "u2")
    kept = await ok_rpc(tenant, "manage/send-with-digest", _regular("kept"))
    dropped = await ok_rpc(tenant, "manage/send-with-digest", _regular("dropped"))
    lone = await ok_rpc(tenant, "manage/send-with-digest", _regular("lone", user="u2"))
    answer = await ok_rpc(
        tenant, "manage/cancel-digest-event", {"transactionId": dropped["transactionId"]}
    )
    assert answer["cancelled"] is True
    via_cancel = await ok_rpc(tenant, "manage/cancel", {"transactionId": lone["transactionId"]})
    assert via_cancel["cancelled"] == 1
    [item] = await _wait_inbox(system, tenant, "u1", 1)
    assert (item["title"], item["body"]) == ("kept", "kept happened")  # a digest of one
    assert (await wait_final_status(tenant, kept["transactionId"]))["result"] == "DELIVERED"
    gone = await ok_rpc(
        tenant, "manage/get-delivery-status", {"transactionId": dropped["transactionId"]}
    )
    assert gone["result"] == "CANCELLED"
    db = system.db
    assert db is not None

    async def emptied() -> bool:
        doc = await db.digests.find_by_event(
            tenant_id=tenant.tenant_id, transaction_id=lone["transactionId"]
        )
        return doc is not None and doc["state"] == "EMPTY"

    await wait_for(emptied, timeout_s=15, what="u2's digest to close empty")
    assert await inbox_of(system, tenant, "u2") == []
    too_late = await rpc(
        tenant, "manage/cancel-digest-event", {"transactionId": kept["transactionId"]}
    )
    assert too_late.status_code == 409
    twice = await rpc(
        tenant, "manage/cancel-digest-event", {"transactionId": dropped["transactionId"]}
    )
    assert twice.status_code == 409
    unknown = await rpc(tenant, "manage/cancel-digest-event", {"transactionId": "txn_nope"})
    assert unknown.status_code == 404


async def test_an_idempotency_key_joins_the_event_once(system: System, tenant: Tenant) -> None:
    await subscriber(tenant, "u1")
    body = {**_regular("once", window=2), "idempotencyKey": "evt-1"}
    answers = await asyncio.gather(
        *(ok_rpc(tenant, "manage/send-with-digest", body) for _ in range(5))
    )
    assert len({a["transactionId"] for a in answers}) == 1
    await ok_rpc(tenant, "manage/send-with-digest", _regular("other", window=2))
    [item] = await _wait_inbox(system, tenant, "u1", 1)
    assert item["body"] == "You have 2 new updates."


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strategy": "WEEKLY", "windowSeconds": 60}, "digestConfig.strategy must be one of"),
        ({"strategy": "REGULAR"}, "digestConfig.windowSeconds is required for REGULAR"),
        (
            {"strategy": "REGULAR", "windowSeconds": 0},
            "digestConfig.windowSeconds must be between 1 and 604800",
        ),
        (
            {"strategy": "LOOK_BACK", "windowSeconds": 700_000},
            "digestConfig.windowSeconds must be between",
        ),
        ({"strategy": "SCHEDULED"}, "digestConfig.cronExpression is required for SCHEDULED"),
        (
            {"strategy": "SCHEDULED", "cronExpression": "every day"},
            "digestConfig.cronExpression must be a valid",
        ),
        (
            {"strategy": "SCHEDULED", "cronExpression": "0 9 * * *", "timezone": "Nowhere/Town"},
            "digestConfig.timezone must be an IANA",
        ),
    ],
)
async def test_digest_config_is_validated(
    system: System, tenant: Tenant, config: dict[str, Any], message: str
) -> None:
    body = _event("x")
    body["digestConfig"] = {"digestKey": "k", **config}
    response = await rpc(tenant, "manage/send-with-digest", body)
    assert response.status_code == 400, response.text
    assert any(e.startswith(message) for e in response.json()["error"]), response.json()
    assert system.db is not None
    assert await system.db.digests.col.count_documents({"tenant_id": tenant.tenant_id}) == 0
