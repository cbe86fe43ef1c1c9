"""Queue depth and consumer count of every queue of the topology, read from the broker.

A passive declare answers both figures without touching the messages. The read is cached
(`NOTIFY_QUEUE_STATS_CACHE_S`) and concurrent callers share one read, so metrics scrapes and
dashboards polling every second cost the broker one round of declares per few seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from aio_pika.abc import AbstractChannel

from shared import metrics
from shared.domain import Channel
from shared.messaging.broker import BROKER_ERRORS, Broker

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class QueueStat:
    """One queue as the broker reported it."""

    name: str
    kind: str  # channel, dlq, delay, fanout, digest
    channel: str | None
    messages: int
    consumers: int


class QueueStats:
    """Cached broker figures for one process."""

    def __init__(self, *, broker: Broker, cache_s: float) -> None:
        self._broker = broker
        self._cache_s = cache_s
        self._at = 0.0
        self._stats: list[QueueStat] = []
        self._lock = asyncio.Lock()
        self._channel: AbstractChannel | None = None

    def _queues(self) -> list[tuple[str, str, str | None]]:
        t = self._broker.topology
        named: list[tuple[str, str, str | None]] = [
            (t.queue(c), "channel", c.value) for c in Channel
        ]
        named += [(t.dlq(c), "dlq", c.value) for c in Channel]
        named += [(t.fanout_queue, "fanout", None), (t.digest_queue, "digest", None)]
        known = {n for n, _, _ in named}
        named += [(q, "delay", None) for q in t.all_queues() if q not in known]
        return named

    async def read(self) -> list[QueueStat]:
        """Every queue's figures, at most `cache_s` old; [] when the broker cannot answer."""
        if time.monotonic() - self._at < self._cache_s:
            return self._stats
        async with self._lock:
            if time.monotonic() - self._at < self._cache_s:
                return self._stats
            try:
                self._stats = await asyncio.wait_for(self._read_all(), timeout=5)
            except (TimeoutError, *BROKER_ERRORS) as exc:  # type: ignore[misc]
                log.warning("queue_stats_unavailable", error=repr(exc))
                self._stats = []
                self._channel = None
            self._at = time.monotonic()
            metrics.set_queue_stats((s.name, s.kind, s.messages, s.consumers) for s in self._stats)
            return self._stats

    async def _read_all(self) -> list[QueueStat]:
        out: list[QueueStat] = []
        for name, kind, channel in self._queues():
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._broker.connection.channel()
            # On the underlying channel: a robust channel would remember each passive declare
            # and repeat it after every reconnect.
            underlay = await self._channel.get_underlay_channel()
            try:
                result = await underlay.queue_declare(name, passive=True)
            except BROKER_ERRORS:
                self._channel = None  # the queue does not exist (yet): its channel is closed
                continue
            out.append(
                QueueStat(
                    name=name,
                    kind=kind,
                    channel=channel,
                    messages=int(result.message_count or 0),
                    consumers=int(result.consumer_count or 0),
                )
            )
        return out

    async def close(self) -> None:
        """Close the channel it reads through."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None
