"""Steps the inbox tests share: in-app sends, sessions, and a WebSocket that collects frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from api.routes.inbox import WS_PATH
from shared.settings import Settings
from tests.integration.helpers import ok_rpc, wait_final_status
from tests.support import Tenant, free_port

Frame = dict[str, Any]


_CREATED: set[tuple[str, str]] = set()


async def ensure_subscriber(tenant: Tenant, user: str) -> None:
    """Create the subscriber once per tenant (a send to an unknown user is NO_CHANNEL)."""
    if (tenant.tenant_id, user) in _CREATED:
        return
    response = await tenant.client.post(
        "/api/v1/notifications/manage/create-subscriber",
        json={"userId": user, "subscriberData": {}},
    )
    assert response.status_code in (200, 409), response.text
    _CREATED.add((tenant.tenant_id, user))


async def send_in_app(
    tenant: Tenant,
    user: str,
    *,
    title: str = "Hi",
    body: str = "Hello",
    category: str = "TRANSACTIONAL",
    feed_id: str | None = None,
    wait: bool = True,
) -> str:
    """manage/send on IN_APP; waits until DELIVERED unless told not to. The transaction id."""
    await ensure_subscriber(tenant, user)
    content: dict[str, Any] = {"title": title, "body": body, "data": {"k": "v"}}
    if feed_id is not None:
        content["feedId"] = feed_id
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": user, "channel": "IN_APP", "category": category, "content": content},
    )
    txn = str(sent["transactionId"])
    if wait:
        status = await wait_final_status(tenant, txn)
        assert status["result"] == "DELIVERED", status
    return txn


async def session_for(tenant: Tenant, user: str) -> dict[str, str]:
    """get-inbox-session for `user` with the tenant's admin key."""
    response = await tenant.client.post(
        "/api/v1/notifications/get-inbox-session", json={}, headers={"X-User-ID": user}
    )
    assert response.status_code == 200, response.text
    data: dict[str, str] = response.json()
    return data


def bearer(token: str) -> dict[str, str]:
    """The headers of a call made with a session token only (as a browser makes it)."""
    return {"Authorization": f"Bearer {token}"}


async def session_rpc(base_url: str, token: str, name: str, body: dict[str, Any]) -> httpx.Response:
    """An inbox RPC called with a session token and nothing else."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        return await client.post(f"/api/v1/notifications/{name}", json=body, headers=bearer(token))


@dataclass
class Socket:
    """A client WebSocket whose frames are collected as they arrive."""

    conn: ClientConnection
    frames: list[Frame] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None
    close_code: int | None = None
    close_reason: str | None = None

    def start(self) -> None:
        """Collect in the background."""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                self.frames.append(json.loads(raw))
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.conn.close_code
            self.close_reason = self.conn.close_reason
            self._arrived.set()

    async def wait_for(
        self, match: Callable[[list[Frame]], bool], *, timeout_s: float = 15, what: str = "frames"
    ) -> list[Frame]:
        """Until `match(frames)` holds; every frame so far."""
        async with asyncio.timeout(timeout_s):
            while not match(self.frames):
                if self.closed:
                    raise AssertionError(f"socket closed ({self.close_code}) waiting for {what}")
                self._arrived.clear()
                await self._arrived.wait()
        return self.frames

    async def wait_closed(self, *, timeout_s: float = 15) -> int | None:
        """The close code, once closed."""
        assert self._reader is not None
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self._reader)
        return self.close_code

    @property
    def closed(self) -> bool:
        """The reader has finished."""
        return self._reader is not None and self._reader.done()

    def of_type(self, kind: str) -> list[Frame]:
        """Frames of one type, in order."""
        return [f for f in self.frames if f["type"] == kind]

    @property
    def last_seq(self) -> int | None:
        """The last seq received."""
        seqs = [f["seq"] for f in self.frames if isinstance(f.get("seq"), int)]
        return seqs[-1] if seqs else None

    async def close(self) -> None:
        """Close from the client side."""
        await self.conn.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def open_socket(ws_url: str, token: str, *, after: int | None = None) -> Socket:
    """Connect to `wsUrl` with the token (and a cursor) and start collecting."""
    url = f"{ws_url}?token={token}" + (f"&after={after}" if after is not None else "")
    sock = Socket(conn=await connect(url, open_timeout=10, close_timeout=5))
    sock.start()
    return sock


def has(kind: str, count: int = 1) -> Callable[[list[Frame]], bool]:
    """At least `count` frames of `kind`."""
    return lambda frames: sum(1 for f in frames if f["type"] == kind) >= count


@dataclass
class ApiServer:
    """One more API process's worth (its own app, connections and realtime queue) on a port of
    its own, in this loop: a second API instance for the tests."""

    settings: Settings
    base_url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        """Its WebSocket URL."""
        return self.base_url.replace("http:", "ws:") + WS_PATH

    async def start(self) -> None:
        """Serve, and wait until it listens."""
        port = free_port()
        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(30):
            while not self._server.started:
                if self._task.done():
                    raise RuntimeError("API did not start")
                await asyncio.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Shut down as on SIGTERM."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
