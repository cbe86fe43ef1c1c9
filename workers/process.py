"""One worker process: open the context, start the role's services, stop them gracefully."""

from __future__ import annotations

import contextlib

import structlog

from shared.metrics import MetricsServer
from shared.settings import Settings
from workers.context import WorkerContext, open_context
from workers.roles import ROLES
from workers.service import Service

log = structlog.get_logger(__name__)


class WorkerProcess:
    """Runs one role; `start` and `stop` bracket its life (SIGTERM calls `stop`)."""

    def __init__(self, settings: Settings, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown worker role {role!r} (known: {', '.join(ROLES)})")
        self.settings = settings
        self.role = role
        self._stack = contextlib.AsyncExitStack()
        self._services: list[Service] = []
        self.ctx: WorkerContext | None = None
        self.metrics = MetricsServer(host=settings.metrics_host, port=settings.metrics_port)

    async def start(self) -> None:
        """Connect, then start every service of the role."""
        self.ctx = await self._stack.enter_async_context(open_context(self.settings))
        for service in ROLES[self.role](self.ctx):
            await service.start()
            self._services.append(service)
        self.metrics.start()
        log.info("worker_started", role=self.role, process=self.ctx.process_id)

    async def stop(self, *, timeout_s: float | None = None) -> None:
        """Stop taking work, let in-flight work finish within the timeout, then close."""
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        for service in reversed(self._services):
            await service.stop(timeout_s=timeout)
        self._services.clear()
        self.metrics.stop()
        await self._stack.aclose()
        log.info("worker_stopped", role=self.role)
