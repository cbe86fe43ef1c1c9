"""The inbox across API processes, heartbeats, a lost wake-up, session expiry and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.inbox.session import SessionTokens
from shared.db.base import utcnow
from shared.db.inbox import InboxStatus
from shared.settings import Settings
from tests.integration.inbox_support import (
    ApiServer,
    has,
    open_socket,
    send_in_app,
    session_for,
    session_rpc,
)
from tests.support import System, Tenant

HEARTBEAT_S = 0.5


@pytest.fixture(scope="module")
async def api_b(system: System, settings: Settings) -> AsyncIterator[ApiServer]:
    """A second API process on the same deployment (same broker names, same database),
    with a quick heartbeat."""
    server = ApiServer(settings.model_copy(update={"inbox_heartbeat_s": HEARTBEAT_S}))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_delivery_reaches_the_socket_on_either_api_process(
    system: System, tenant: Tenant, api_b: ApiServer
) -> None:
    user = "two-apis"
    session = await session_for(tenant, user)  # asked of API A
    token = session["sessionToken"]
    on_a = await open_socket(session["wsUrl"], token)
    on_b = await open_socket(api_b.ws_url, token)
    try:
        await on_a.wait_for(has("counts"))
        await on_b.wait_for(has("counts"))
        await send_in_app(tenant, user, title="to both")  # sent through A, delivered by the worker
        await on_a.wait_for(has("message.created"))
        await on_b.wait_for(has("message.created"))
        message_id = on_b.of_type("message.created")[0]["message"]["messageId"]

        # Marked through B: the socket on A hears it; deleted through A: B hears it.
        body = {"messageId": message_id, "status": "READ"}
        marked = await session_rpc(api_b.base_url, token, "mark-inbox-message", body)
        assert marked.status_code == 200
        await on_a.wait_for(has("message.updated"))
        assert on_a.of_type("message.updated")[0]["message"]["status"] == "READ"
        deleted = await session_rpc(
            system.base_url, token, "delete-inbox-message", {"messageId": message_id}
        )
        assert deleted.status_code == 200
        await on_b.wait_for(has("message.deleted"))
        await on_a.wait_for(has("message.deleted"))
        for sock in (on_a, on_b):
            events = [(f["type"], f["seq"]) for f in sock.frames if f["type"] != "ping"]
            assert [e for e in events if e[0] != "counts"] == [
                ("message.created", 1),
                ("message.updated", 2),
                ("message.deleted", 3),
            ]
    finally:
        await on_a.close()
        await on_b.close()


async def test_heartbeats_carry_the_seq_and_repair_a_lost_wake_up(
    system: System, tenant: Tenant, api_b: ApiServer
) -> None:
    user = "heartbeat"
    session = await session_for(tenant, user)
    sock = await open_socket(api_b.ws_url, session["sessionToken"])
    try:
        await sock.wait_for(has("ping", 2), timeout_s=5, what="two pings")
        assert sock.of_type("ping")[0] == {"type": "ping", "seq": 0}
        # An event stored with no wake-up (as if the broker lost it) arrives at a heartbeat.
        await send_in_app(tenant, user, title="stored")
        assert system.db is not None
        item = (await system.db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id=user))[0]
        await sock.wait_for(has("message.created"), timeout_s=5)
        await system.db.inbox.mark(
            tenant_id=tenant.tenant_id,
            subscriber_id=user,
            message_id=str(item["_id"]),
            status=InboxStatus.READ,
        )
        await system.db.inbox_streams.append(
            tenant_id=tenant.tenant_id,
            subscriber_id=user,
            events=[{"k": "updated", "m": str(item["_id"]), "at": utcnow()}],
            keep=100,
        )
        await sock.wait_for(has("message.updated"), timeout_s=HEARTBEAT_S * 6)
        assert sock.of_type("message.updated")[0]["seq"] == 2
        assert sock.of_type("message.updated")[0]["message"]["status"] == "READ"
        pings = len(sock.of_type("ping"))
        await sock.wait_for(has("ping", pings + 1), timeout_s=5, what="the next ping")
        assert sock.of_type("ping")[-1] == {"type": "ping", "seq": 2}
    finally:
        await sock.close()


async def test_a_socket_closes_with_4401_when_its_session_expires(
    tenant: Tenant, api_b: ApiServer, settings: Settings
) -> None:
    token, _ = SessionTokens.from_settings(settings).issue(
        tenant_id=tenant.tenant_id, subscriber_id="expiring", environment="development", ttl_s=2
    )
    sock = await open_socket(api_b.ws_url, token)
    await sock.wait_for(has("counts"))
    assert await sock.wait_closed(timeout_s=10) == 4401
    assert sock.close_reason == "session token expired"


async def test_stopping_an_api_process_closes_its_sockets_cleanly(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    server = ApiServer(settings)
    await server.start()
    session = await session_for(tenant, "shutdown")
    sock = await open_socket(server.ws_url, session["sessionToken"])
    try:
        await sock.wait_for(has("counts"))
    finally:
        await server.stop()
    code = await sock.wait_closed(timeout_s=15)
    assert code in (1001, 1012), (code, sock.close_reason)
