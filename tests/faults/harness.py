"""Real processes for fault tests: the API and workers as `./scripts/dev` runs them.

Each `ProcessSystem` has its own prefix (its own queues, exchanges and database), its own
bootstrap API key, and writes every child's output to a log file that a failing test prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.db.client import Database, connect_database
from shared.messaging.broker import connect_first
from shared.messaging.topology import Topology
from tests.support import delete_broker_objects, drop_database, free_port, reap, wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    """One child process and where its output goes."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn it, appending to its log."""
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    @property
    def alive(self) -> bool:
        """Still running."""
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        """Send `sig` (SIGKILL is `kill -9`)."""
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> int:
        """Its exit code, waiting up to `timeout_s`."""
        assert self.popen is not None
        popen = self.popen

        async def exited() -> bool:
            return popen.poll() is not None

        await wait_for(exited, timeout_s=timeout_s, what=f"{self.name} to exit")
        return int(popen.returncode)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        reap(self.popen, timeout_s=15)

    async def wait_logged(self, event: str, timeout_s: float = 10) -> None:
        """Until its log holds a line with `event` (the processes log JSON events)."""

        async def logged() -> bool:
            return f'"event": "{event}"' in self.log_path.read_text(errors="replace")

        await wait_for(logged, timeout_s=timeout_s, what=f"{self.name} to log {event}")

    def tail(self, lines: int = 40) -> str:
        """The end of its log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ProcessSystem:
    """The API, channel workers and the maintenance worker as separate OS processes."""

    rabbitmq_url: str
    mongodb_url: str
    log_dir: Path
    settings_env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"t{secrets.token_hex(5)}")
    api_key: str = field(default_factory=lambda: f"nk_fault_{secrets.token_urlsafe(16)}")
    api_port: int = field(default_factory=free_port)
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def topology(self) -> Topology:
        """This system's broker names (quorum queues when its settings say so)."""
        quorum = self.settings_env.get("NOTIFY_QUORUM_QUEUES", "").lower() in ("1", "true")
        return Topology(self.prefix, quorum=quorum)

    @property
    def base_url(self) -> str:
        """The API's URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, **overrides: str) -> dict[str, str]:
        """A child's environment: ours without NOTIFY_*, then this system's settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
        base.update(
            {
                "NOTIFY_ENVIRONMENT": "test",
                "NOTIFY_PREFIX": self.prefix,
                "RABBITMQ_URL": self.rabbitmq_url,
                "MONGODB_URL": self.mongodb_url,
                "NOTIFY_API_PORT": str(self.api_port),
                "NOTIFY_BOOTSTRAP_API_KEY": self.api_key,
                "NOTIFY_SECRET_KEY": "fault-test-secret-key-0123456789",
                "NOTIFY_LOG_LEVEL": "INFO",
                "NOTIFY_LOG_JSON": "true",
                "NOTIFY_PUBLISH_TIMEOUT_S": "2",
                "NOTIFY_MONGO_TIMEOUT_MS": "1500",
                "NOTIFY_WORKER_LEASE_S": "6",
                "NOTIFY_RETRY_BASE_S": "0.5",
                "NOTIFY_RETRY_MAX_BACKOFF_S": "2",
                "NOTIFY_CIRCUIT_COOLDOWN_S": "2",
                "NOTIFY_MAINTENANCE_INTERVAL_S": "1",
                "NOTIFY_OUTBOX_GRACE_S": "4",
                "NOTIFY_OVERDUE_GRACE_S": "2",
                "NOTIFY_SHUTDOWN_TIMEOUT_S": "10",
                **dict(self.settings_env),
            }
        )
        base.update(overrides)
        return base

    def start(self, name: str, *args: str, **env_overrides: str) -> Proc:
        """Start `python -m <args>` as `name` (replacing a dead process of that name)."""
        proc = Proc(
            name=name,
            argv=[sys.executable, "-m", *args],
            env=self.env(**env_overrides),
            log_path=self.log_dir / f"{name}.log",
        )
        proc.start()
        self.procs[name] = proc
        return proc

    async def start_api(self, *, module: str = "api", **env_overrides: str) -> Proc:
        """Start the API (`python -m <module>`) and wait until it is ready."""
        proc = self.start("api", module, **env_overrides)
        await self.wait_api_ready(proc)
        return proc

    async def wait_api_ready(self, proc: Proc, timeout_s: float = 30) -> None:
        """Until `/health/ready` answers 200."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:

            async def ready() -> bool:
                if not proc.alive:
                    raise AssertionError(f"api exited during start-up:\n{proc.tail()}")
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_for(ready, timeout_s=timeout_s, what="the API to be ready")

    def start_worker(self, role: str, *, name: str | None = None, **env_overrides: str) -> Proc:
        """Start `python -m workers <role>`."""
        return self.start(name or f"worker-{role}", "workers", role, **env_overrides)

    def client(self, timeout_s: float = 15) -> httpx.AsyncClient:
        """An HTTP client with the bootstrap admin key."""
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def wait_api_sees_down(self, dependency: str, timeout_s: float = 20) -> None:
        """Until the API's `/health/ready` names `dependency` as down: the outage is felt."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:

            async def felt() -> bool:
                response = await client.get("/health/ready")
                return response.status_code == 503 and dependency in response.json()["down"]

            await wait_for(felt, timeout_s=timeout_s, what=f"the API to see {dependency} down")

    async def wait_queues_drained(self, timeout_s: float = 30) -> None:
        """Until every queue of this system (work, delay levels, DLQs) holds no message, so
        nothing is left that could still reach a provider."""
        connection = await connect_first(self.rabbitmq_url, timeout_s=5)
        async with connection:
            channel = await connection.channel()

            async def drained() -> bool:
                for name in self.topology.all_queues():
                    queue = await channel.declare_queue(name, passive=True)
                    if queue.declaration_result.message_count:
                        return False
                return True

            await wait_for(drained, timeout_s=timeout_s, what="the system's queues to drain")

    @contextlib.asynccontextmanager
    async def open_database(self) -> AsyncIterator[Database]:
        """A client of this system's database, closed on the way out."""
        db = connect_database(url=self.mongodb_url, name=self.database_name, timeout_ms=3000)
        try:
            yield db
        finally:
            await db.close()

    @property
    def database_name(self) -> str:
        """Named after the prefix, as Settings does."""
        return self.prefix.replace("-", "_")

    def logs(self) -> str:
        """Every child's log tail, for a failure message."""
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.procs.values())

    async def stop(self) -> None:
        """Stop every child (SIGTERM), then remove this system's broker objects and database."""
        for proc in self.procs.values():
            proc.stop()
        await delete_broker_objects(self.rabbitmq_url, self.topology)
        try:
            await drop_database(self.mongodb_url, self.database_name)
        except Exception as exc:  # a database the test killed for good
            print(f"could not drop {self.database_name}: {exc!r}")


async def send_stream(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    *,
    concurrency: int,
    path: str = "/api/v1/notifications/manage/send",
) -> list[tuple[int, dict[str, Any]]]:
    """POST every body with `concurrency` in flight; (status, json) each, 0 for no answer."""
    results: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(bodies)
    cursor = iter(range(len(bodies)))

    async def lane() -> None:
        for i in cursor:
            try:
                response = await client.post(path, json=bodies[i])
            except httpx.HTTPError:
                continue
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            results[i] = (response.status_code, payload)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


async def run_command(*argv: str, timeout_s: float = 60) -> None:
    """Run a command (e.g. rabbitmqctl) without blocking the loop; fail loudly."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {out.decode()[-500:]}")


def kill9(proc: Proc) -> None:
    """`kill -9`."""
    proc.signal(signal.SIGKILL)
