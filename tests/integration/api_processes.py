"""Separate `python -m api` processes on the session's broker and database, for the rules
that must hold across API processes (revocation, rate limits)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.settings import Settings
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ApiProcess:
    """One API process and its base URL."""

    base_url: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """What it printed (for a failing test's message)."""
        return self.log_path.read_text(errors="replace")[-4000:]


def process_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a process that joins the session's system."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    env.update(
        {
            "RABBITMQ_URL": settings.rabbitmq_url,
            "MONGODB_URL": settings.mongodb_url,
            "NOTIFY_PREFIX": settings.prefix,
            "NOTIFY_SECRET_KEY": settings.secret_key,
            "NOTIFY_ENVIRONMENT": "test",
            "NOTIFY_LOG_LEVEL": "WARNING",
            "NOTIFY_LOG_JSON": "true",
            "NOTIFY_METRICS_PORT": "0",
        }
    )
    env.update(overrides)
    return env


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


@asynccontextmanager
async def api_processes(
    settings: Settings, count: int, env: Mapping[str, str] | None = None
) -> AsyncIterator[list[ApiProcess]]:
    """Start `count` API processes, wait until each is ready, stop them at the end."""
    started: list[ApiProcess] = []
    with tempfile.TemporaryDirectory(prefix="notify-api-") as tmp:
        try:
            for n in range(count):
                port = free_port()
                log_path = Path(tmp) / f"api{n}.log"
                popen = _spawn(
                    process_env(settings, NOTIFY_API_PORT=str(port), **(env or {})), log_path
                )
                started.append(ApiProcess(f"http://127.0.0.1:{port}", popen, log_path))
            async with httpx.AsyncClient(timeout=2) as client:
                for proc in started:

                    async def ready(proc: ApiProcess = proc) -> bool:
                        assert proc.popen.poll() is None, proc.output()
                        try:
                            response = await client.get(f"{proc.base_url}/health/ready")
                        except httpx.TransportError:
                            return False
                        return response.status_code == 200

                    await wait_for(ready, timeout_s=40, what=f"API at {proc.base_url}")
            yield started
        finally:
            for proc in started:
                proc.popen.terminate()
            for proc in started:
                try:
                    proc.popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    proc.popen.wait()
