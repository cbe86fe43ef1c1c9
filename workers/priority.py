"""A channel worker's consumers; with quorum queues, its high queue is taken first.

Quorum queues have no message priorities, so priority 4-5 waits in `<channel>.high.queue`
(topology.py). The worker consumes both queues, each with the worker's prefetch, and every
delivery passes one `PriorityGate` of that many slots before its handler runs:

- the broker hands a high message over at once (the high consumer has its own window), so
  it never waits behind the normal queue's backlog on the broker;
- in the process, a freed slot goes to a waiting high delivery before any normal one, so
  it waits at most for one delivery in flight to finish;
- the worker still runs `prefetch` deliveries at a time, as with a classic priority queue.

Both subscriptions are cancelled together on stop, so neither queue keeps feeding the gate
while the other drains.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.domain import Channel
from shared.messaging.broker import Broker
from workers.consumer import Consumer, MessageHandler
from workers.service import Service


class PriorityGate:
    """`capacity` slots; a freed slot goes to the longest-waiting high request, if any."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @property
    def free(self) -> int:
        """Slots nobody holds."""
        return self._free

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
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._waiting[high].remove(waiter)
            raise

    def _release(self) -> None:
        for high in (True, False):
            queue = self._waiting[high]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1


class PriorityConsumers:
    """The high queue's consumer and the normal queue's, sharing one gate (a Service)."""

    def __init__(
        self, *, broker: Broker, channel: Channel, handler: MessageHandler, prefetch: int
    ) -> None:
        topology = broker.topology
        self.gate = PriorityGate(prefetch)
        self.consumers = [
            Consumer(
                broker=broker,
                queue=queue,
                handler=handler,
                prefetch=prefetch,
                gate=self.gate,
                high=queue == topology.high_queue(channel),
            )
            for queue in topology.work_queues(channel)
        ]

    async def start(self) -> None:
        """Start consuming both queues, the high one first."""
        for consumer in self.consumers:
            await consumer.start()

    async def stop(self, *, timeout_s: float) -> None:
        """Stop both at once: cancel both subscriptions, then drain both."""
        await asyncio.gather(*(c.stop(timeout_s=timeout_s) for c in self.consumers))


def channel_consumers(
    *, broker: Broker, channel: Channel, handler: MessageHandler, prefetch: int
) -> Service:
    """What consumes a channel: one queue, or with quorum queues the high one and the normal."""
    if broker.topology.quorum:
        return PriorityConsumers(broker=broker, channel=channel, handler=handler, prefetch=prefetch)
    return Consumer(
        broker=broker, queue=broker.topology.queue(channel), handler=handler, prefetch=prefetch
    )
