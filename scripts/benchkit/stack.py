"""The system under test, started the way `scripts/dev` starts it, and stopped whatever happens.

The process-starting code is devrunner's own (its Supervisor, `start_mongo`, `start_services`,
`wait_ready`), so the bench measures what `./scripts/dev` runs. Differences, all for isolation:
a fresh random prefix, a free API port, a SecantusDB of its own in a temporary directory (or
MONGODB_URL, then a database named after the prefix), the children's output in a log file, and
a fake SendGrid in its own process.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import aio_pika
import devrunner

from benchkit.providers import FakeProvider, start_fakes
from shared.domain import Channel
from shared.messaging.topology import Topology
from tests.support import delete_broker_objects, drop_database

BENCHKIT = Path(__file__).resolve().parent
FAKE_READY_S = 20.0
CLEAN_RETRY_S = 90.0


@dataclass
class StackConfig:
    """What the bench chooses about the system it starts."""

    rabbitmq_url: str
    mongodb_url: str | None  # None: an embedded SecantusDB of our own
    log_path: Path
    log_level: str = "WARNING"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 90.0
    providers: list[str] = field(default_factory=list)  # fakes to start besides SendGrid's


@dataclass
class Stack:
    """Started processes and where they answer."""

    config: StackConfig
    prefix: str = field(default_factory=lambda: f"bench{secrets.token_hex(4)}")
    api_key: str = field(default_factory=lambda: "nk_bench_" + secrets.token_urlsafe(24))
    provider_key: str = field(default_factory=lambda: "SG.bench." + secrets.token_hex(8))
    base_url: str = ""
    mongodb_url: str = ""
    provider_url: str = ""
    embedded_db: bool = False
    fakes: dict[str, FakeProvider] = field(default_factory=dict)
    _log: TextIO | None = None
    _sup: devrunner.Supervisor | None = None
    _tmp: Path | None = None

    @property
    def database_name(self) -> str:
        """The database the system writes (Settings.database_name of the prefix)."""
        return self.prefix.replace("-", "_")

    def start(self) -> None:
        """Start the database, the fake provider, the API and the workers; wait until ready."""
        cfg = self.config
        cfg.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = cfg.log_path.open("w", encoding="utf-8")
        self._log = log
        sup = devrunner.Supervisor(devrunner.Console(log, color=False), devrunner.StopSignal())
        self._sup = sup
        env = dict(os.environ)
        env["RABBITMQ_URL"] = cfg.rabbitmq_url
        if cfg.mongodb_url:
            env["MONGODB_URL"] = cfg.mongodb_url
        else:
            env.pop("MONGODB_URL", None)
            self._tmp = Path(tempfile.mkdtemp(prefix="notify-bench-mongo-"))
            url = devrunner.start_mongo(sup, env, storage=self._tmp)
            if url is None:
                raise RuntimeError(f"SecantusDB did not start (see {cfg.log_path})")
            env["MONGODB_URL"] = url
            self.embedded_db = True
        self.mongodb_url = env["MONGODB_URL"]

        provider_port = devrunner.free_port()
        fake_env = {**env, "PYTHONPATH": str(devrunner.ROOT)}
        argv = [sys.executable, str(BENCHKIT / "fake_provider.py")]
        sup.start("fake", [*argv, str(provider_port), self.provider_key], fake_env)
        self.provider_url = f"http://127.0.0.1:{provider_port}"
        others = [name for name in cfg.providers if name != "sendgrid"]
        if others:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="notify-bench-"))
            self.fakes = start_fakes(sup, fake_env, others, self._tmp)
        self.fakes["sendgrid"] = FakeProvider(
            name="sendgrid",
            url=self.provider_url,
            stats_url=self.provider_url + "/stats",
            configure={
                "providerType": "SENDGRID",
                "credentials": {"apiKey": self.provider_key, "fromEmail": "bench@example.com"},
                "endpoint": self.provider_url,
            },
        )

        api_port = devrunner.free_port()
        env.update(
            {
                "NOTIFY_PREFIX": self.prefix,
                "NOTIFY_API_HOST": "127.0.0.1",
                "NOTIFY_API_PORT": str(api_port),
                "NOTIFY_LOG_LEVEL": cfg.log_level,
                **cfg.extra_env,
            }
        )
        env = devrunner.child_env(env, api_key=self.api_key)
        deadline = time.monotonic() + FAKE_READY_S
        while not devrunner.is_listening("127.0.0.1", provider_port):
            if time.monotonic() > deadline or sup.first_dead(sup.children):
                raise RuntimeError(f"the fake provider did not start (see {cfg.log_path})")
            time.sleep(0.1)
        devrunner.start_services(sup, env)
        self.base_url = f"http://127.0.0.1:{api_port}"
        if not devrunner.wait_ready(
            sup, f"{self.base_url}/health/ready", sup.children, cfg.ready_timeout_s
        ):
            raise RuntimeError(f"the system did not become ready (see {cfg.log_path})")

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role: api, worker, database, provider."""
        roles: dict[str, list[int]] = {"api": [], "worker": [], "database": [], "provider": []}
        role_of = {
            "api": "api",
            "mongo": "database",
            "fake": "provider",
            "maint": "worker",
            "digest": "worker",
        }
        role_of.update({c.value: "worker" for c in Channel})
        for child in self._sup.children if self._sup else []:
            # Extra copies of a channel's worker are named email2, email3, …
            if child.exit_code is None:
                base = child.name.rstrip("0123456789")
                role = role_of.get(base) or ("provider" if base.startswith("fake") else "worker")
                roles[role].append(child.proc.pid)
        return roles

    def dead_child(self) -> str | None:
        """The name and exit code of a child that died, if one did."""
        if self._sup is None:
            return None
        dead = self._sup.first_dead(self._sup.children)
        return None if dead is None else f"{dead.name} (exit code {dead.exit_code})"

    def stop(self) -> None:
        """Stop every child (the database last), delete the broker objects and the data."""
        sup = self._sup
        if sup is not None:
            sup.stop_all([c for c in sup.children if c.name != "mongo"])
            sup.stop_all([c for c in sup.children if c.name == "mongo"])
        try:
            asyncio.run(self._clean())
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            if self._log is not None:
                self._log.close()

    async def _clean(self) -> None:
        # The shared broker may be restarting (other engineers' fault tests): keep trying a
        # while rather than leave this run's queues behind.
        deadline = time.monotonic() + CLEAN_RETRY_S
        while True:
            try:
                await delete_broker_objects(self.config.rabbitmq_url, Topology(self.prefix))
                break
            except (OSError, aio_pika.exceptions.AMQPError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(2)
        if self.mongodb_url and not self.embedded_db:
            await drop_database(self.mongodb_url, self.database_name)
