"""A channel worker's consumers; with quorum queues, its high queue is taken first.

Quorum queues have no message priorities, so priority 4-5 waits in `<channel>.high.queue`
(topology.py). The worker consumes both queues, each with the worker's prefetch, as a classic
priority queue would serve them:

- every delivery passes one `PriorityGate` of `prefetch` slots before its handler runs, so
  the worker still runs `prefetch` deliveries at a time, and a freed slot goes to a waiting
  high delivery before any normal one;
- the broker hands a high message over at once (the high consumer has its own window), so
  it never waits behind the normal queue's backlog on the broker;
- once a high delivery has to wait for a slot (the worker is busy), the normal consumer is
  paused (subscription cancelled; what it holds carries on) until no high delivery waits
  and the high queue has nothing ready: no new normal message is taken meanwhile. With
  slots to spare, high messages never wait and normal traffic is not held back.

Both subscriptions are cancelled together on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from aio_pika.abc import AbstractChannel

from shared.domain import Channel
from shared.messaging.broker import BROKER_ERRORS, Broker
from workers.consumer import Consumer, MessageHandler
from workers.service import Service

log = structlog.get_logger(__name__)

_RECHECK_S = 0.5  # while paused, how often the high queue is looked at when nothing happens
_PROBE_TIMEOUT_S = 5.0
_PROBE_SPACING_S = 0.05


class PriorityGate:
    """`capacity` slots; a freed slot goes to the longest-waiting high request, if any."""

    def __init__(self, capacity: int, *, on_change: Callable[[], None] | None = None) -> None:
        self._free = capacity
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        self._on_change = on_change  # told whenever `high_waiting` changes

    @property
    def free(self) -> int:
        """Slots nobody holds."""
        return self._free

    @property
    def high_waiting(self) -> int:
        """High requests waiting for a slot."""
        return len(self._waiting[True])

    def _changed(self, high: bool) -> None:
        if high and self._on_change is not None:
            self._on_change()

    @asynccontextmanager
    async def slot(self, *, high: bool) -> AsyncIterator[None]:
        """Hold one slot for the block."""
        await self._acquire(high=high)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, *, high: bool) -> None:
        if self._free > 0:  # free slots mean nobody waits: they are handed over on release
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[high].append(waiter)
        self._changed(high)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._waiting[high].remove(waiter)
                self._changed(high)
            raise

    def _release(self) -> None:
        for high in (True, False):
            queue = self._waiting[high]
            while queue:
                waiter = queue.popleft()
                self._changed(high)
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1


class PriorityConsumers:
    """The high queue's consumer and the normal queue's, sharing one gate (a Service).

    The pause control runs on every change of the waiting high deliveries or of the high
    consumer's deliveries, and every `_RECHECK_S` while paused, which catches what no
    delivery announces (e.g. a reconnect that restored only the high consumer).
    """

    def __init__(
        self, *, broker: Broker, channel: Channel, handler: MessageHandler, prefetch: int
    ) -> None:
        topology = broker.topology
        self._broker = broker
        self._high_queue = topology.high_queue(channel)
        self._changed = asyncio.Event()
        self._stopping = False
        self._control_task: asyncio.Task[None] | None = None
        self._probe: AbstractChannel | None = None
        self.gate = PriorityGate(prefetch, on_change=self._changed.set)
        self.high = Consumer(
            broker=broker,
            queue=self._high_queue,
            handler=handler,
            prefetch=prefetch,
            gate=self.gate,
            high=True,
            on_change=self._changed.set,
        )
        self.normal = Consumer(
            broker=broker,
            queue=topology.queue(channel),
            handler=handler,
            prefetch=prefetch,
            gate=self.gate,
        )

    async def start(self) -> None:
        """Start consuming both queues, the high one first, and the pause control."""
        await self.high.start()
        await self.normal.start()
        self._probe = await self._broker.connection.channel(publisher_confirms=False)
        self._control_task = asyncio.create_task(self._control())
        self._changed.set()  # messages may be waiting in the high queue already

    async def _control(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECHECK_S):
                    await self._changed.wait()
            self._changed.clear()
            if self._stopping:
                return
            try:
                async with asyncio.timeout(_PROBE_TIMEOUT_S):
                    if self.gate.high_waiting:
                        await self.normal.pause()
                    elif self.normal.paused:
                        if not await self._high_ready():
                            await self.normal.resume()
                        else:  # a long burst: ask the broker at most every _PROBE_SPACING_S
                            await asyncio.sleep(_PROBE_SPACING_S)
            except BROKER_ERRORS as exc:  # TimeoutError among them
                log.warning("priority_control_failed", error=repr(exc))

    async def _high_ready(self) -> int:
        """Messages ready in the high queue, asked of the broker (not aio-pika's cache)."""
        assert self._probe is not None
        underlay = await self._probe.get_underlay_channel()
        declared = await underlay.queue_declare(self._high_queue, passive=True)
        return int(declared.message_count or 0)

    async def stop(self, *, timeout_s: float) -> None:
        """Stop both at once: cancel both subscriptions, then drain both."""
        self._stopping = True
        self._changed.set()
        if self._control_task is not None:
            await asyncio.gather(self._control_task, return_exceptions=True)
        await asyncio.gather(
            self.high.stop(timeout_s=timeout_s), self.normal.stop(timeout_s=timeout_s)
        )
        if self._probe is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                await self._probe.close()


def channel_consumers(
    *, broker: Broker, channel: Channel, handler: MessageHandler, prefetch: int
) -> Service:
    """What consumes a channel: one queue, or with quorum queues the high one and the normal."""
    if broker.topology.quorum:
        return PriorityConsumers(broker=broker, channel=channel, handler=handler, prefetch=prefetch)
    return Consumer(
        broker=broker, queue=broker.topology.queue(channel), handler=handler, prefetch=prefetch
    )
