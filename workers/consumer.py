"""The generic consumer: any queue, any handler, with manual acks and a graceful stop.

A handler decides each message's fate as a named `Handling`; the consumer carries it out:

- ACK: the outcome is recorded (or there is nothing to do): remove the message;
- REQUEUE: nothing was recorded: after a short pause, let the broker deliver it again;
- REJECT: the message can never be handled: drop it (the handler has logged why).

Each delivery runs in a task of its own, shielded from aiormq's cancellation when the
connection drops: a handler cut off there may already have called a provider with nothing
recorded, and the redelivered copy would send it again after the lease (the RabbitMQ-restart
fault test caught exactly that). Shielded, it records its outcome whatever the broker does;
only its ack is lost, which the handler's idempotency makes harmless.

On `stop` the consumer cancels its subscription, waits (bounded) for in-flight deliveries,
then asks the handler to `abandon` what is still running and nacks those messages back.
aio-pika's robust connection restores the subscription after a reconnect, because the queue
is declared (passively) through the robust channel.

Several consumers can share a `Gate` (their handlers then run only in its slots), and a
consumer can be paused and resumed: that is how a worker takes a high queue first
(`workers/priority.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared import metrics
from shared.messaging.broker import BROKER_ERRORS, Broker

log = structlog.get_logger(__name__)

_REQUEUE_PAUSE_S = 1.0  # keeps a failing dependency from turning redelivery into a hot loop
_BOUND = ("queue", "correlation_id", "attempt", "notification_id", "tenant_id", "channel")


class Handling(StrEnum):
    """What the consumer does with a message once its handler is done."""

    ACK = "ack"
    REQUEUE = "requeue"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message, its JSON body parsed."""

    body: dict[str, Any]
    headers: Mapping[str, Any]
    correlation_id: str | None
    redelivered: bool

    def notification_ref(self) -> tuple[str, str] | None:
        """(tenant id, notification id) named by the body, or None when it names none."""
        tenant_id = self.body.get("tenant_id")
        notification_id = self.body.get("notification_id")
        if isinstance(tenant_id, str) and isinstance(notification_id, str):
            return tenant_id, notification_id
        return None


class MessageHandler(Protocol):
    """Decides one message's fate; must be idempotent (messages can arrive twice)."""

    async def handle(self, message: Inbound) -> Handling:
        """Handle the message; an exception counts as REQUEUE."""
        ...

    async def abandon(self, message: Inbound) -> None:
        """Shutdown cut `handle` off: undo what would keep another process from taking it."""
        ...


class Gate(Protocol):
    """Concurrency shared by several consumers (`workers/priority.py`)."""

    def slot(self, *, high: bool) -> AbstractAsyncContextManager[None]:
        """Hold one slot while a handler runs."""
        ...


class Consumer:
    """Consumes one queue with `prefetch` messages in flight (each through `gate`, if any)."""

    def __init__(
        self,
        *,
        broker: Broker,
        queue: str,
        handler: MessageHandler,
        prefetch: int,
        gate: Gate | None = None,
        high: bool = False,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.queue_name = queue
        self._broker = broker
        self._handler = handler
        self._prefetch = prefetch
        self._gate = gate
        self._high = high
        self._on_change = on_change  # told whenever a delivery arrives or is settled
        self._stopping = False
        self.pauses = 0  # how often `pause` cancelled the subscription
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: dict[asyncio.Task[None], tuple[AbstractIncomingMessage, Inbound]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Open a channel and begin consuming."""
        self._channel = await self._broker.connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        # A passive declare (not `get_queue(ensure=False)`) registers the queue with the
        # robust channel, which is what makes aio-pika restore our consumer after a reconnect.
        self._queue = await self._channel.declare_queue(self.queue_name, passive=True)
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info("consumer_started", queue=self.queue_name, prefetch=self._prefetch)

    @property
    def paused(self) -> bool:
        """True while subscribed to nothing (paused, or not started)."""
        return self._consumer_tag is None

    async def pause(self) -> None:
        """Receive nothing new; deliveries in flight carry on and are settled as usual."""
        if self._queue is not None and self._consumer_tag is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            self.pauses += 1
            await self._queue.cancel(tag)
            log.debug("consumer_paused", queue=self.queue_name)

    async def resume(self) -> None:
        """Subscribe again after `pause` (not after `stop`)."""
        if self._queue is not None and self._consumer_tag is None and not self._stopping:
            self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
            log.debug("consumer_resumed", queue=self.queue_name)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        inbound = _parse(message)
        if inbound is None:
            log.error("message_not_json", queue=self.queue_name, size=len(message.body))
            await self._settle(message, Handling.REJECT)
            return
        task = asyncio.create_task(self._process(message, inbound))
        self._in_flight[task] = (message, inbound)
        self._idle.clear()
        task.add_done_callback(self._done)
        if self._on_change is not None:
            self._on_change()
        await asyncio.shield(task)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not self._in_flight:
            self._idle.set()
        if self._on_change is not None:
            self._on_change()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery_task_failed", error=repr(task.exception()))

    async def _process(self, message: AbstractIncomingMessage, inbound: Inbound) -> None:
        body = inbound.body
        structlog.contextvars.bind_contextvars(
            queue=self.queue_name,
            correlation_id=inbound.correlation_id,
            attempt=inbound.headers.get("attempt"),
            notification_id=body.get("notification_id"),
            tenant_id=body.get("tenant_id"),
            channel=body.get("channel"),
        )
        started = time.perf_counter()
        try:
            try:
                async with self._gate.slot(high=self._high) if self._gate else nullcontext():
                    handling = await self._handler.handle(inbound)
            except Exception:
                log.exception("handler_failed")
                handling = Handling.REQUEUE
            metrics.observe_message(
                queue=self.queue_name,
                handling=handling.value,
                seconds=time.perf_counter() - started,
            )
            await self._settle(message, handling)
        finally:
            structlog.contextvars.unbind_contextvars(*_BOUND)

    async def _settle(self, message: AbstractIncomingMessage, handling: Handling) -> None:
        try:
            if handling is Handling.ACK:
                await message.ack()
            elif handling is Handling.REJECT:
                await message.reject(requeue=False)
            else:
                await asyncio.sleep(_REQUEUE_PAUSE_S)
                await message.nack(requeue=True)
        except BROKER_ERRORS as exc:
            # The channel died under us: the broker redelivers the message and the handler's
            # idempotency makes that harmless.
            log.warning("message_not_settled", handling=handling.value, error=repr(exc))

    async def stop(self, *, timeout_s: float) -> None:
        """Stop taking work, let in-flight deliveries finish (bounded), hand back the rest.

        Deliveries still running at the deadline are cancelled, the handler abandons them
        (e.g. PROCESSING → QUEUED) and their messages are nacked back onto the queue, so
        another process takes them at once instead of after a lease.
        """
        self._stopping = True
        if self._queue is not None and self._consumer_tag is not None:
            try:
                tag, self._consumer_tag = self._consumer_tag, None
                await self._queue.cancel(tag)
            except Exception as exc:  # the channel may already be gone; unacked messages requeue
                log.warning("consumer_cancel_failed", error=repr(exc))
        log.info("worker_draining", queue=self.queue_name, in_flight=len(self._in_flight))
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        except TimeoutError:
            await self._abandon_in_flight()

    async def _abandon_in_flight(self) -> None:
        stuck = dict(self._in_flight)
        log.warning("worker_stop_timeout", queue=self.queue_name, in_flight=len(stuck))
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        for message, inbound in stuck.values():
            try:
                await self._handler.abandon(inbound)
            except Exception as exc:  # e.g. a lease then expires on its own
                log.warning("abandon_failed", error=repr(exc))
            try:
                await message.nack(requeue=True)
            except Exception as exc:  # a closed channel requeues it anyway
                log.warning("nack_failed", error=repr(exc))


def _parse(message: AbstractIncomingMessage) -> Inbound | None:
    try:
        body = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    headers = message.headers or {}
    correlation = message.correlation_id or headers.get("correlation_id")
    return Inbound(
        body=body,
        headers=headers,
        correlation_id=str(correlation) if correlation is not None else None,
        redelivered=bool(message.redelivered),
    )
