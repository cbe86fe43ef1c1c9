"""The inbox WebSocket: events in order with their seq, resume with `after`, refusals, resets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets.asyncio.client import connect

from api.inbox.session import SessionTokens
from shared.settings import Settings
from tests.integration.helpers import ok_rpc
from tests.integration.inbox_support import (
    Frame,
    Socket,
    has,
    open_socket,
    send_in_app,
    session_for,
    session_rpc,
)
from tests.support import System, Tenant

USER = "rt-user"


def event_seqs(frames: list[Frame]) -> list[int]:
    """The seq of every event frame (counts, pings and resets repeat the last one)."""
    return [f["seq"] for f in frames if f["type"].startswith("message.")]


async def test_every_change_arrives_in_order_with_counts(system: System, tenant: Tenant) -> None:
    session = await session_for(tenant, USER)
    sock = await open_socket(session["wsUrl"], session["sessionToken"])
    try:
        await sock.wait_for(has("counts"), what="the first counts")
        assert sock.frames == [{"type": "counts", "seq": 0, "unseenCount": 0, "unreadCount": 0}]

        await send_in_app(tenant, USER, title="one", body="first")
        await sock.wait_for(has("counts", 2))
        created = sock.of_type("message.created")[0]
        assert created["seq"] == 1
        assert created["message"]["title"] == "one"
        assert created["message"]["status"] == "UNSEEN"
        assert sock.frames[-1] == {"type": "counts", "seq": 1, "unseenCount": 1, "unreadCount": 1}
        message_id = created["message"]["messageId"]

        token = session["sessionToken"]
        base = system.base_url
        body: dict[str, Any] = {"messageId": message_id, "status": "READ"}
        assert (await session_rpc(base, token, "mark-inbox-message", body)).status_code == 200
        await sock.wait_for(has("counts", 3))
        updated = sock.of_type("message.updated")[0]
        assert (updated["seq"], updated["message"]["status"]) == (2, "READ")
        assert sock.frames[-1] == {"type": "counts", "seq": 2, "unseenCount": 0, "unreadCount": 0}

        body = {"status": "UNREAD"}
        assert (await session_rpc(base, token, "mark-all-inbox-messages", body)).status_code == 200
        await sock.wait_for(has("counts", 4))
        bulk = sock.of_type("message.updated")[1]
        assert bulk == {
            "type": "message.updated",
            "seq": 3,
            "bulk": {"status": "UNREAD", "feedIds": None, "count": 1},
        }
        assert sock.frames[-1]["unreadCount"] == 1

        body = {"messageId": message_id}
        assert (await session_rpc(base, token, "delete-inbox-message", body)).status_code == 200
        await sock.wait_for(has("counts", 5))
        assert sock.of_type("message.deleted") == [
            {"type": "message.deleted", "seq": 4, "messageId": message_id}
        ]
        assert sock.frames[-1] == {"type": "counts", "seq": 4, "unseenCount": 0, "unreadCount": 0}
        assert event_seqs(sock.frames) == [1, 2, 3, 4]
    finally:
        await sock.close()


async def test_another_subscribers_socket_hears_nothing(system: System, tenant: Tenant) -> None:
    mine = await session_for(tenant, "rt-me")
    theirs = await session_for(tenant, "rt-them")
    me = await open_socket(mine["wsUrl"], mine["sessionToken"])
    them = await open_socket(theirs["wsUrl"], theirs["sessionToken"])
    try:
        await me.wait_for(has("counts"))
        await them.wait_for(has("counts"))
        await send_in_app(tenant, "rt-me", title="private")
        await me.wait_for(has("message.created"))
        # The other socket is woken by nothing: a later event of its own arrives alone.
        await send_in_app(tenant, "rt-them", title="theirs")
        await them.wait_for(has("message.created"))
        assert [f["message"]["title"] for f in them.of_type("message.created")] == ["theirs"]
    finally:
        await me.close()
        await them.close()


async def test_a_client_resuming_after_its_seq_gets_exactly_what_it_missed(
    tenant: Tenant,
) -> None:
    session = await session_for(tenant, USER + "-resume")
    user = USER + "-resume"
    sock = await open_socket(session["wsUrl"], session["sessionToken"])
    await send_in_app(tenant, user, title="seen live")
    await sock.wait_for(has("message.created"))
    last = sock.last_seq
    assert last == 1
    await sock.close()

    for i in range(3):
        await send_in_app(tenant, user, title=f"missed {i}")
    again = await open_socket(session["wsUrl"], session["sessionToken"], after=last)
    try:
        await again.wait_for(has("counts"))
        assert [(f["type"], f["seq"]) for f in again.frames] == [
            ("message.created", 2),
            ("message.created", 3),
            ("message.created", 4),
            ("counts", 4),
        ]
        assert [f["message"]["title"] for f in again.of_type("message.created")] == [
            "missed 0",
            "missed 1",
            "missed 2",
        ]
        await send_in_app(tenant, user, title="live again")
        await again.wait_for(has("message.created", 4))
        assert event_seqs(again.frames) == [2, 3, 4, 5]
    finally:
        await again.close()


async def test_fifty_concurrent_sends_while_the_socket_reconnects_leave_no_gap(
    system: System, tenant: Tenant
) -> None:
    """Novu #4439 loses events under concurrent triggers: here every one arrives, once, in
    seq order, across three reconnections made while the sends are in flight."""
    user = USER + "-burst"
    session = await session_for(tenant, user)
    await send_in_app(tenant, user, title="warm-up")
    received: list[Frame] = []
    sock = await open_socket(session["wsUrl"], session["sessionToken"])
    await sock.wait_for(has("counts"))
    cursor = sock.last_seq
    sends = asyncio.gather(
        *(send_in_app(tenant, user, title=f"burst {i}", wait=False) for i in range(50))
    )
    for _ in range(3):
        await asyncio.sleep(0.3)
        await sock.close()
        received.extend(sock.frames)
        cursor = sock.last_seq if sock.last_seq is not None else cursor
        sock = await open_socket(session["wsUrl"], session["sessionToken"], after=cursor)
    await sends
    try:

        def all_in(frames: list[Frame]) -> bool:
            titles = {f["message"]["title"] for f in received + frames if "message" in f}
            return len([t for t in titles if t.startswith("burst")]) == 50

        await sock.wait_for(all_in, timeout_s=40, what="all 50 messages")
    finally:
        await sock.close()
    received.extend(sock.frames)

    seqs = event_seqs(received)
    assert seqs == list(range(2, 52)), seqs  # contiguous, in order, none twice
    titles = [f["message"]["title"] for f in received if f["type"] == "message.created"]
    assert sorted(titles) == sorted(f"burst {i}" for i in range(50))
    feed = await ok_rpc(
        tenant, "get-inbox-feed", {"pageSize": 100}, headers=tenant.user_headers(user)
    )
    assert {m["messageId"] for m in feed["messages"] if m["title"].startswith("burst")} == {
        f["message"]["messageId"] for f in received if f["type"] == "message.created"
    }
    assert received[-1]["type"] == "counts"
    assert received[-1]["unseenCount"] == 51


async def test_refusals_have_clear_close_codes(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    session = await session_for(tenant, USER)
    ws_url, token = session["wsUrl"], session["sessionToken"]
    expired, _ = SessionTokens.from_settings(settings).issue(
        tenant_id=tenant.tenant_id,
        subscriber_id=USER,
        environment="development",
        now=time.time() - 600,
        ttl_s=60,
    )
    cases = [
        (ws_url, 4401, "session token required"),
        (f"{ws_url}?token=nonsense", 4401, "invalid session token"),
        (f"{ws_url}?token={expired}", 4401, "session token expired"),
        (
            f"{ws_url}?token={session['sessionToken']}&after=-1",
            4400,
            "after must be a whole number",
        ),
        (f"{ws_url}?token={token}&after=x", 4400, "after must be a whole number"),
    ]
    for url, code, reason in cases:
        sock = Socket(conn=await connect(url, open_timeout=10))
        sock.start()
        assert await sock.wait_closed() == code, url
        assert sock.close_reason == reason
        assert sock.frames == []


async def test_a_cursor_the_stream_does_not_hold_gets_a_reset(tenant: Tenant) -> None:
    user = USER + "-reset"
    session = await session_for(tenant, user)
    await send_in_app(tenant, user, title="only")
    sock = await open_socket(session["wsUrl"], session["sessionToken"], after=99)
    try:
        await sock.wait_for(has("counts"))
        assert sock.frames == [
            {"type": "reset", "seq": 1},
            {"type": "counts", "seq": 1, "unseenCount": 1, "unreadCount": 1},
        ]
    finally:
        await sock.close()
