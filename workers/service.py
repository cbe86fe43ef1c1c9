"""What a worker process runs: services started after the context opens, stopped before it
closes. A consumer is one; a periodic loop (the maintenance sweep) is another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


class Service(Protocol):
    """Something a worker process runs until it is told to stop."""

    async def start(self) -> None:
        """Begin; return once running."""
        ...

    async def stop(self, *, timeout_s: float) -> None:
        """Finish in-flight work within `timeout_s`, then return."""
        ...


class PeriodicService:
    """Runs `tick` every `interval_s`; a failed tick is logged and the next one runs anyway."""

    def __init__(self, *, name: str, interval_s: float, tick: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self._interval_s = interval_s
        self._tick = tick
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop in the background."""
        self._task = asyncio.create_task(self._loop())
        log.info(f"{self.name}_started", interval_s=self._interval_s)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception as exc:  # an outage: the next pass tries again
                log.warning(f"{self.name}_pass_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def stop(self, *, timeout_s: float) -> None:
        """Let the current pass finish (bounded), then end the loop."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=timeout_s)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        log.info(f"{self.name}_stopped")
