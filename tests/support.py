"""Test helpers: free ports, waiting with deadlines, the in-process system under test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from pymongo import AsyncMongoClient

from api.app import create_app
from shared.db.client import Database, connect_database
from shared.db.embedded import embedded_server_args
from shared.domain import Channel
from shared.messaging.broker import connect_first
from shared.messaging.topology import Topology
from shared.settings import Settings
from workers.process import WorkerProcess

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 15.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


def tcp_reachable(host: str, port: int, *, timeout_s: float = 1.0) -> bool:
    """True when something accepts a TCP connection there."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def reap(proc: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """Wait for `proc` to exit; kill it if it has not within `timeout_s`."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class EmbeddedMongo:
    """A `secantusd-py` on a free port; in memory unless given a directory to keep data in."""

    def __init__(self, storage_path: str = ":memory:") -> None:
        self.port = free_port()
        self.storage_path = storage_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn and wait until it accepts connections."""
        exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
        self._proc = subprocess.Popen(
            [
                exe,
                *("--port", str(self.port), "--storage-path", self.storage_path),
                *embedded_server_args(
                    os.environ.get("NOTIFY_EMBEDDED_DB_CACHE")
                    or str(Settings.model_fields["embedded_db_cache"].default)
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not tcp_reachable("127.0.0.1", self.port, timeout_s=0.2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("secantusd-py did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate it."""
        if self._proc is not None:
            self._proc.terminate()
            reap(self._proc, timeout_s=10)


@dataclass
class Tenant:
    """A fresh tenant with an admin key and a client that sends it."""

    tenant_id: str
    api_key: str
    client: httpx.AsyncClient

    def user_headers(self, user_id: str) -> dict[str, str]:
        """Headers of a user-facing RPC called through the gateway."""
        return {"X-User-ID": user_id, "X-Tenant-ID": self.tenant_id}


@dataclass
class System:
    """The API (real uvicorn, real port) and one worker per channel, sharing one loop."""

    settings: Settings
    base_url: str = ""
    db: Database | None = None
    _server: uvicorn.Server | None = None
    _server_task: asyncio.Task[None] | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    async def start(self, channels: list[Channel], *, roles: tuple[str, ...] = ()) -> None:
        """Start the API, wait until it listens, then the workers (a channel's, and `roles`)."""
        port = free_port()
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._server_task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 60
        while not self._server.started:
            if self._server_task.done() or time.monotonic() > deadline:
                raise RuntimeError("API did not start")
            await asyncio.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port}"
        s = self.settings
        self.db = connect_database(
            url=s.mongodb_url, name=s.database_name, timeout_ms=s.mongo_timeout_ms
        )
        for role in [c.value for c in channels] + list(roles):
            worker = WorkerProcess(self.settings, role)
            await worker.start()
            self.workers.append(worker)

    async def stop(self) -> None:
        """Workers first (they finish in-flight work), then the API, then clean the broker."""
        for worker in self.workers:
            await worker.stop(timeout_s=10)
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            await self._server_task
        if self.db is not None:
            await self.db.close()

    async def new_tenant(self, *, scopes: tuple[str, ...] = ("admin",)) -> Tenant:
        """A tenant nobody else uses, with its own admin key."""
        return await self.new_tenant_with_id(f"tenant-{secrets.token_hex(4)}", scopes=scopes)

    async def new_tenant_with_id(
        self, tenant_id: str, *, scopes: tuple[str, ...] = ("admin",)
    ) -> Tenant:
        """A key (admin by default) for the named tenant, and a client that sends it."""
        assert self.db is not None
        key = f"nk_test_{secrets.token_urlsafe(16)}"
        await self.db.api_keys.ensure(
            key=key, tenant_id=tenant_id, scopes=list(scopes), name="test"
        )
        client = httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
        )
        return Tenant(tenant_id=tenant_id, api_key=key, client=client)


async def delete_broker_objects(url: str, topology: Topology) -> None:
    """Remove every queue and exchange of a test prefix (`url` may list several nodes)."""
    connection = await connect_first(url, timeout_s=5)
    async with connection:
        for name in topology.all_queues():
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        for name in topology.all_exchanges():
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()


async def drop_database(url: str, name: str) -> None:
    """Drop the test database."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=3000)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


def env(name: str) -> str | None:
    """A test-harness environment variable (tests are an entry point, like `main`)."""
    return os.environ.get(name) or None


class TcpProxy:
    """A real TCP relay on 127.0.0.1 that a test can cut and restore, to stage an outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen and relay."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
