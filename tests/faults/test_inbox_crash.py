"""kill -9 of the in-app worker mid-stream: every inbox item once, every one announced, and a
client replaying the stream from the start sees each in an unbroken run of seq numbers."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from shared.db.base import Doc
from tests.faults.harness import ProcessSystem, kill9, send_stream
from tests.faults.steps import TENANT, all_records, wait_all_delivered
from tests.integration.inbox_support import has, open_socket
from tests.support import wait_for

pytestmark = pytest.mark.timeout(180)

USER = "inbox-crash"
SENDS = 300


async def test_in_app_worker_killed_mid_stream_loses_and_doubles_nothing(
    make_system: Callable[..., ProcessSystem], fault_report: Callable[..., None]
) -> None:
    system = make_system()
    # A small prefetch keeps the first worker busy long enough to be killed mid-way.
    first = system.start_worker("in_app", name="worker-in-app-1", NOTIFY_WORKER_PREFETCH="4")
    system.start_worker("maintenance")
    await system.start_api()
    async with system.open_database() as db, system.client() as client:
        created = await client.post(
            "/api/v1/notifications/manage/create-subscriber",
            json={"userId": USER, "subscriberData": {}},
        )
        assert created.status_code == 200, created.text
        bodies = [
            {"userId": USER, "channel": "IN_APP", "content": {"title": f"m{i}", "body": "x"}}
            for i in range(SENDS)
        ]
        answers = await send_stream(client, bodies, concurrency=16)
        assert [status for status, _ in answers] == [200] * SENDS

        async def some_delivered() -> bool:
            n = await db.notifications.col.count_documents(
                {"tenant_id": TENANT, "status": "DELIVERED"}
            )
            return n >= 10

        await wait_for(some_delivered, timeout_s=30, what="the first deliveries")
        kill9(first)
        assert await first.wait_exit(10) == -signal.SIGKILL
        delivered_at_kill = await db.notifications.col.count_documents(
            {"tenant_id": TENANT, "status": "DELIVERED"}
        )
        system.start_worker("in_app", name="worker-in-app-2")
        records = await all_records(db)
        done = await wait_all_delivered(db, {d["_id"] for d in records}, timeout_s=90)

        items: list[Doc] = [
            d async for d in db.inbox.col.find({"tenant_id": TENANT, "subscriber_id": USER})
        ]
        by_notification = {d["notification_id"]: d for d in items}
        assert len(items) == SENDS  # one item per notification: none lost, none doubled
        assert set(by_notification) == {d["_id"] for d in done}
        # The record names the item that was written (a redelivery reports the first one).
        assert all(d["provider_message_id"] == by_notification[d["_id"]]["_id"] for d in done)

        # A client replaying from the start sees every item, seq after seq.
        token = (
            await client.post(
                "/api/v1/notifications/get-inbox-session", json={}, headers={"X-User-ID": USER}
            )
        ).json()["sessionToken"]
        sock = await open_socket(
            system.base_url.replace("http:", "ws:") + "/api/v1/notifications/inbox/ws",
            token,
            after=0,
        )
        try:
            frames = await sock.wait_for(has("counts"), timeout_s=30)
        finally:
            await sock.close()
        seqs = [f["seq"] for f in frames if f["type"].startswith("message.")]
        announced = [f["message"]["messageId"] for f in frames if f["type"] == "message.created"]
        fault_report(
            sends=SENDS,
            delivered_at_kill=delivered_at_kill,
            items=len(items),
            events=len(seqs),
            announced_twice=len(announced) - len(set(announced)),
        )
        assert seqs == list(range(1, len(seqs) + 1))
        assert set(announced) == {d["_id"] for d in items}
        assert frames[-1] == {
            "type": "counts",
            "seq": len(seqs),
            "unseenCount": SENDS,
            "unreadCount": SENDS,
        }
