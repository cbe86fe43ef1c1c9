"""One pass over a DLQ that loses nothing and reorders nothing.

How, and why this way (each fact below was measured on RabbitMQ 3.10.8 quorum queues, and
`tests/integration/test_dead_letter_ops.py` keeps checking them):

* The pass consumes the queue with manual ack and a prefetch as large as its window, and
  holds every message unacked until it has read as many as `queue.declare(passive)` counted.
  Closing the channel then hands every unacked message back, in queue order, in one step
  (a quorum queue returns a gone consumer's messages sorted by delivery).
* Messages the operation removes are acked inside an AMQP transaction (`tx.select` /
  `tx.commit`). Plain acks are not safe here: the channel sends each one to the queue as a
  separate command, parks them beyond 32 in flight, and drops the parked ones when the
  channel closes, so removed messages came back (tens of duplicates out of 2000 held).
  `tx.commit` sends all acks of a batch as one command before it answers.
  Nacks (`basic.nack requeue`) reordered messages, so a pass never nacks.
* After the channel closes, the pass waits until the queue reports no consumer: the same
  state change that drops the consumer returns its messages, so the next pass sees them all.
* One pass per DLQ at a time: a quorum queue ignores `exclusive` on `basic.consume`, so the
  lock is an exclusive classic queue, `Topology.dlq_lock(channel)`, declared on the
  operation's own connection (another connection gets RESOURCE_LOCKED). It vanishes with
  that connection, so a crashed operation cannot leave it behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractTransaction,
)

from shared.dlq.model import DeadLetter
from shared.domain import Channel
from shared.errors import BrokerUnavailable, Busy
from shared.messaging.broker import BROKER_ERRORS, connect_first
from shared.messaging.topology import Topology

log = structlog.get_logger(__name__)

MAX_WINDOW = 65_535  # basic.qos prefetch-count is a 16-bit field
_POLL_S = 0.02


@asynccontextmanager
async def connect(url: str, *, timeout_s: float) -> AsyncIterator[AbstractConnection]:
    """An operation's own connection (its lock lives and dies with it), to the first node of
    `url` that answers."""
    try:
        connection = await connect_first(url, timeout_s=timeout_s)
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(f"cannot connect to RabbitMQ: {type(exc).__name__}") from exc
    try:
        yield connection
    finally:
        with contextlib.suppress(*BROKER_ERRORS):
            async with asyncio.timeout(timeout_s):
                await connection.close()


class DlqPass:
    """Reads one DLQ head to tail (up to a window); `remove` + `commit` take messages out."""

    def __init__(
        self,
        *,
        connection: AbstractConnection,
        queue: str,
        channel: Channel,
        timeout_s: float,
        window: int,
    ) -> None:
        self.queue = queue
        self.channel = channel
        self._connection = connection
        self._timeout_s = timeout_s
        self._window = max(1, min(window, MAX_WINDOW))
        self._amqp: AbstractChannel | None = None
        self._tx: AbstractTransaction | None = None
        self._consuming = False
        self._deliveries: dict[int, AbstractIncomingMessage] = {}
        self._arrived = asyncio.Event()
        self._next_tag = 1
        self._held: dict[int, AbstractIncomingMessage] = {}
        self._uncommitted = 0
        self.depth = 0  # ready messages when the pass began
        self.scanned = 0  # messages read so far
        self.removed = 0  # messages taken out (committed)

    @property
    def total(self) -> int:
        """How many messages this pass reads: the queue's depth, capped by the window."""
        return min(self.depth, self._window)

    @property
    def truncated(self) -> bool:
        """True when the queue held more than the window, so its tail was not read."""
        return self.depth > self._window

    async def start(self, *, wait_s: float) -> None:
        """Open the transactional channel, count the queue and start consuming it."""
        amqp = await self._connection.channel(publisher_confirms=False)
        self._amqp = amqp
        amqp.close_callbacks.add(lambda *_: self._arrived.set())
        self._tx = amqp.transaction()
        await self._tx.select(timeout=self._timeout_s)
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            try:
                queue = await amqp.declare_queue(self.queue, passive=True, timeout=self._timeout_s)
            except aiormq.exceptions.ChannelNotFoundEntity:
                return  # no DLQ declared yet: nothing to read
            declared = queue.declaration_result
            if not declared.consumer_count:
                break
            # The previous pass's consumer may still be leaving; anyone else is a foreign one.
            if asyncio.get_running_loop().time() >= deadline:
                raise Busy(
                    f"{self.queue} has {declared.consumer_count} consumer(s) attached; "
                    "dead-letter operations need it to themselves"
                )
            await asyncio.sleep(_POLL_S)
        self.depth = declared.message_count or 0
        if self.depth:
            await amqp.set_qos(prefetch_count=self._window, timeout=self._timeout_s)
            await queue.consume(self._on_delivery, no_ack=False, timeout=self._timeout_s)
            self._consuming = True

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        self._deliveries[message.delivery_tag or 0] = message
        self._arrived.set()

    async def next(self) -> DeadLetter | None:
        """The next message in queue order, or None once `total` have been read."""
        if self.scanned >= self.total:
            return None
        tag = self._next_tag
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while tag not in self._deliveries:
            if self._amqp is None or self._amqp.is_closed:
                raise BrokerUnavailable(f"{self.queue}: channel closed while reading")
            self._arrived.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self._arrived.wait()
            except TimeoutError:
                raise BrokerUnavailable(
                    f"{self.queue}: no message delivered within {self._timeout_s:g}s"
                ) from None
        message = self._deliveries.pop(tag)
        self._next_tag += 1
        position = self.scanned
        self.scanned += 1
        self._held[position] = message
        return DeadLetter.parse(
            queue=self.queue,
            channel=self.channel,
            position=position,
            headers=message.headers,
            body=message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            priority=message.priority,
            redelivered=bool(message.redelivered),
        )

    async def remove(self, letter: DeadLetter) -> None:
        """Ack `letter` inside the transaction; it leaves the queue at the next `commit`."""
        message = self._held.pop(letter.position)
        await message.ack()
        self._uncommitted += 1

    async def commit(self) -> None:
        """Make the removals so far final (one settle command for the whole batch)."""
        if self._uncommitted and self._tx is not None:
            await self._tx.commit(timeout=self._timeout_s)
            self.removed += self._uncommitted
            self._uncommitted = 0

    async def finish(self) -> None:
        """Commit what was removed, hand the rest back in order, wait until the queue has it.

        Never raises: it runs while another error may be on its way out.
        """
        amqp = self._amqp
        if amqp is not None and not amqp.is_closed:
            try:
                await self.commit()
            except BROKER_ERRORS as exc:
                log.warning("dlq_commit_failed", queue=self.queue, error=repr(exc))
            with contextlib.suppress(*BROKER_ERRORS):
                async with asyncio.timeout(self._timeout_s):
                    await amqp.close()
        if self._consuming:
            try:
                await self._wait_until_returned()
            except BROKER_ERRORS as exc:
                log.warning("dlq_return_unconfirmed", queue=self.queue, error=repr(exc))

    async def _wait_until_returned(self) -> None:
        probe = await self._connection.channel(publisher_confirms=False)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout_s
            while True:
                queue = await probe.declare_queue(self.queue, passive=True, timeout=self._timeout_s)
                if not queue.declaration_result.consumer_count:
                    return
                if loop.time() >= deadline:
                    log.warning("dlq_consumer_lingers", queue=self.queue)
                    return
                await asyncio.sleep(_POLL_S)
        finally:
            with contextlib.suppress(*BROKER_ERRORS):
                await probe.close()


async def _acquire_lock(
    connection: AbstractConnection, *, name: str, dlq: str, wait_s: float, timeout_s: float
) -> AbstractChannel:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(
                name,
                durable=False,
                exclusive=True,
                auto_delete=False,
                arguments={"x-max-length": 0},  # a lock, never a place for messages
                timeout=timeout_s,
            )
            return channel
        except aiormq.exceptions.ChannelLockedResource:
            if loop.time() >= deadline:
                raise Busy(
                    f"another dead-letter operation is working on {dlq}; try again shortly"
                ) from None
            await asyncio.sleep(_POLL_S * 5)


async def _release_lock(channel: AbstractChannel, *, name: str, timeout_s: float) -> None:
    with contextlib.suppress(*BROKER_ERRORS):
        async with asyncio.timeout(timeout_s):
            await channel.queue_delete(name)
            await channel.close()


@asynccontextmanager
async def open_pass(
    *,
    connection: AbstractConnection,
    topology: Topology,
    channel: Channel,
    timeout_s: float,
    window: int,
    lock_wait_s: float,
) -> AsyncIterator[DlqPass]:
    """Lock `channel`'s DLQ, read it through a `DlqPass`, then hand back and unlock."""
    dlq = topology.dlq(channel)
    lock_name = topology.dlq_lock(channel)
    lock = await _acquire_lock(
        connection, name=lock_name, dlq=dlq, wait_s=lock_wait_s, timeout_s=timeout_s
    )
    try:
        dlq_pass = DlqPass(
            connection=connection,
            queue=dlq,
            channel=channel,
            timeout_s=timeout_s,
            window=window,
        )
        try:
            await dlq_pass.start(wait_s=lock_wait_s)
            yield dlq_pass
        finally:
            await dlq_pass.finish()
    finally:
        await _release_lock(lock, name=lock_name, timeout_s=timeout_s)
