"""Time under faults: the digest worker killed between closing a digest and sending it, and
parked messages lost from the delay levels (the sweeps re-publish them, on time or nearly).

Every case ends with each notification delivered exactly once.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest

from shared.messaging.topology import DELAY_LEVELS, Topology
from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem
from tests.faults.steps import (
    SEND,
    TENANT,
    email_body,
    provider_calls,
    setup_email,
    wait_all_delivered,
)
from tests.support import wait_for

pytestmark = pytest.mark.timeout(180)

DIGEST = "/api/v1/notifications/manage/send-with-digest"
DELAYED = "/api/v1/notifications/manage/send-delayed"


def digest_event(label: str, *, window_s: int) -> dict[str, Any]:
    """A REGULAR digest event for u1 by e-mail."""
    return {
        "userId": "u1",
        "channel": "EMAIL",
        "content": {"title": label, "body": label},
        "digestConfig": {"strategy": "REGULAR", "digestKey": "k", "windowSeconds": window_s},
    }


def delayed_mail(label: str, *, delay_s: int) -> dict[str, Any]:
    """A `send-delayed` body for u1 by e-mail."""
    return {
        "userId": "u1",
        "channel": "EMAIL",
        "content": {"title": label, "body": "x"},
        "delaySeconds": delay_s,
    }


async def post_ok(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST that must answer 200."""
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def lose_parked_messages(rabbitmq_url: str, prefix: str) -> int:
    """Purge every delay level of this system: its parked messages are lost."""
    purged = 0
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        for level in range(DELAY_LEVELS):
            queue = await channel.declare_queue(Topology(prefix).delay_level(level), passive=True)
            result = await queue.purge()
            purged += int(result.message_count or 0)
    return purged


@pytest.mark.parametrize("failpoint", ["after_close", "after_send"])
async def test_digest_worker_killed_between_close_and_send_sends_exactly_once(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
    failpoint: str,
) -> None:
    system = make_system()
    system.start_worker("email")
    await system.start_api()
    doomed = system.start("worker-digest-failpoint", "tests.faults.failpoint_digest", failpoint)
    async with system.client() as client, system.open_database() as db:
        await setup_email(client, sendgrid)
        events = 3
        for i in range(events):
            await post_ok(client, DIGEST, digest_event(f"e{i}", window_s=1))
        assert await doomed.wait_exit(20) == -signal.SIGKILL
        [digest] = [d async for d in db.digests.col.find({"tenant_id": TENANT})]
        assert digest["state"] == "CLOSED"  # closed, and the closer died before finishing
        stored_before = await db.notifications.col.count_documents({"tenant_id": TENANT})
        assert stored_before == (1 if failpoint == "after_send" else 0)

        system.start_worker("digest")  # the flush message comes back to it, unacked

        async def sent() -> bool:
            doc = await db.digests.col.find_one({"_id": digest["_id"]})
            return doc is not None and doc["state"] == "SENT"

        await wait_for(sent, timeout_s=30, what="the digest to be sent")
        [record] = [d async for d in db.notifications.col.find({"tenant_id": TENANT})]
        await wait_all_delivered(db, {record["_id"]}, timeout_s=30)
        await system.wait_queues_drained()
        calls = provider_calls(sendgrid)
        fault_report(
            failpoint=failpoint,
            events=events,
            digests=1,
            notifications=1,
            provider_calls=sum(calls.values()),
        )
        assert calls == {record["_id"]: 1}
        assert sendgrid.mails[0]["content"][0]["value"] == f"You have {events} new updates."


async def test_lost_parked_messages_are_republished_by_the_sweeps(
    rabbitmq_url: str,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    system = make_system()
    system.start_worker("email")
    await system.start_api()
    async with system.client() as client, system.open_database() as db:
        await setup_email(client, sendgrid)
        sends = 5
        for i in range(sends):
            await post_ok(client, DELAYED, delayed_mail(f"d{i}", delay_s=4))
        await post_ok(client, DIGEST, digest_event("digested", window_s=4))
        purged = await lose_parked_messages(rabbitmq_url, system.prefix)
        assert purged == sends + 1  # every delayed send and the digest's flush: all lost
        # Only the sweeps can bring them back now.
        system.start_worker("maintenance")
        system.start_worker("digest")
        records = [d async for d in db.notifications.col.find({"tenant_id": TENANT})]
        delivered = await wait_all_delivered(db, {d["_id"] for d in records}, timeout_s=40)

        async def digest_sent() -> list[Any] | None:
            docs = [d async for d in db.digests.col.find({"tenant_id": TENANT, "state": "SENT"})]
            return docs or None

        [digest] = await wait_for(digest_sent, timeout_s=40, what="the digest to be sent")
        record_ids = {d["_id"] for d in records} | {digest["notification_id"]}
        await wait_all_delivered(db, record_ids, timeout_s=30)
        await system.wait_queues_drained()
        late_s = [(d["processing_at"] - d["deliver_at"]).total_seconds() for d in delivered]
        calls = provider_calls(sendgrid)
        fault_report(
            parked=sends + 1,
            lost=purged,
            delivered=len(record_ids),
            provider_calls=sum(calls.values()),
            max_late_s=round(max(late_s), 2),
            swept=sum(1 for d in delivered if d.get("sweeps")),
        )
        assert sorted(calls.values()) == [1] * (sends + 1)
        assert all(d.get("sweeps") == 1 for d in delivered)
        # Overdue grace (2 s) plus a sweep interval (1 s) plus worker start-up: late, not lost.
        assert max(late_s) < 15


async def test_a_quiet_hours_deferral_whose_parked_message_is_lost_is_sent_once_after_the_window(
    rabbitmq_url: str,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """The e-mail worker defers into quiet hours; the parked messages are lost; the sweep
    publishes the overdue DELAYED records after the window, each delivered exactly once."""
    system = make_system()
    system.start_worker("email")
    await system.start_api()
    async with system.client() as client, system.open_database() as db:
        await setup_email(client, sendgrid)
        now = datetime.now(UTC)
        start = now.replace(second=0, microsecond=0)
        end = start + timedelta(
            minutes=1 if (start + timedelta(minutes=1) - now).seconds >= 5 else 2
        )
        quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "timezone": "UTC"}
        response = await client.post(
            "/api/v1/notifications/manage/update-subscriber-data",
            json={"userId": "u1", "subscriberData": {"quietHours": quiet}},
        )
        assert response.status_code == 200, response.text
        sends = 3
        for i in range(sends):
            await post_ok(client, SEND, email_body(f"q{i}"))

        async def all_deferred() -> list[Any] | None:
            docs = [d async for d in db.notifications.col.find({"tenant_id": TENANT})]
            deferred = [d for d in docs if d["status"] == "DELAYED"]
            return deferred if len(deferred) == sends else None

        deferred = await wait_for(all_deferred, timeout_s=20, what="the mails deferred")
        assert {d["failure_reason"] for d in deferred} == {"quiet_hours"}
        purged = await lose_parked_messages(rabbitmq_url, system.prefix)
        assert purged == sends
        system.start_worker("maintenance")
        left_s = (end - datetime.now(UTC)).total_seconds()
        delivered = await wait_all_delivered(
            db, {d["_id"] for d in deferred}, timeout_s=left_s + 40
        )
        await system.wait_queues_drained()
        calls = provider_calls(sendgrid)
        fault_report(
            deferred=sends,
            lost=purged,
            delivered=len(delivered),
            provider_calls=sum(calls.values()),
        )
        assert sorted(calls.values()) == [1] * sends
        assert all(d["processing_at"].replace(tzinfo=UTC) >= end for d in delivered)
        assert all(d.get("sweeps") == 1 for d in delivered)
