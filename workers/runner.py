"""A channel worker: consume with manual ack, deliver, record, ack; stop gracefully."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import httpx
import orjson
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.crypto import CredentialCipher
from shared.db.client import Database
from shared.domain import Channel
from shared.messaging.broker import BROKER_ERRORS, Broker
from shared.settings import Settings
from workers.circuit import CircuitBreaker
from workers.delivery import DeliveryHandler, Disposition
from workers.providers import ProviderResolver
from workers.services import connect_services

log = structlog.get_logger(__name__)

_REQUEUE_PAUSE_S = 1.0  # keeps a failing dependency from turning redelivery into a hot loop


class ChannelWorker:
    """Consumes one channel's queue; resources are built in `start` and passed down."""

    def __init__(self, settings: Settings, channel: Channel) -> None:
        self.settings = settings
        self.channel = channel
        self.worker_id = (
            f"{socket.gethostname()}:{os.getpid()}:{channel.value}:{uuid.uuid4().hex[:6]}"
        )
        self._db: Database | None = None
        self._broker: Broker | None = None
        self._http: httpx.AsyncClient | None = None
        self._resolver: ProviderResolver | None = None
        self._handler: DeliveryHandler | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: dict[asyncio.Task[None], AbstractIncomingMessage] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Connect, declare, and begin consuming."""
        s = self.settings
        self._db, self._broker = await connect_services(s)
        # DESIGN.md §8: httpx grows expensive above ~32 requests in flight per client.
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            timeout=s.provider_timeout_s,
        )
        self._resolver = ProviderResolver(
            db=self._db,
            cipher=CredentialCipher(s.secret_key),
            http=self._http,
            timeout_s=s.provider_timeout_s,
            sandbox_default=s.sandbox_default,
        )
        self._handler = DeliveryHandler(
            db=self._db,
            broker=self._broker,
            resolver=self._resolver,
            breaker=CircuitBreaker(
                threshold=s.circuit_failure_threshold, cooldown_s=s.circuit_cooldown_s
            ),
            channel=self.channel,
            worker_id=self.worker_id,
            lease_s=s.worker_lease_s,
            policy=s.retry_policy(self.channel),
            circuit_max_wait_s=s.circuit_max_wait_s,
        )
        self._channel = await self._broker.connection.channel()
        await self._channel.set_qos(prefetch_count=s.worker_prefetch)
        # A passive declare (not `get_queue(ensure=False)`) registers the queue with the
        # robust channel, which is what makes aio-pika restore our consumer after a reconnect.
        self._queue = await self._channel.declare_queue(
            self._broker.topology.queue(self.channel), passive=True
        )
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info(
            "worker_started",
            channel=self.channel.value,
            worker=self.worker_id,
            prefetch=s.worker_prefetch,
        )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq runs this callback in a task of the channel's, and cancels it when the
        # connection drops. A delivery cut off there may already have reached the provider
        # with nothing recorded: after the lease, the redelivered copy would send it again
        # (the RabbitMQ-restart fault test caught exactly that). So the delivery runs in a
        # task of ours, shielded: it records its outcome whatever the broker does, and only
        # its ack is lost, which the claim guard makes harmless on redelivery.
        task = asyncio.create_task(self._process(message))
        self._in_flight[task] = message
        self._idle.clear()
        task.add_done_callback(self._settled)
        await asyncio.shield(task)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not self._in_flight:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery_task_failed", error=repr(task.exception()))

    async def _process(self, message: AbstractIncomingMessage) -> None:
        assert self._handler is not None
        headers = message.headers or {}
        structlog.contextvars.bind_contextvars(
            channel=self.channel.value,
            correlation_id=message.correlation_id or headers.get("correlation_id"),
            attempt=headers.get("attempt"),
        )
        try:
            try:
                body = orjson.loads(message.body)
            except orjson.JSONDecodeError:
                log.error("message_not_json", size=len(message.body))
                await message.ack()
                return
            structlog.contextvars.bind_contextvars(
                notification_id=body.get("notification_id"), tenant_id=body.get("tenant_id")
            )
            try:
                disposition = await self._handler.handle(body)
            except Exception:
                log.exception("handler_failed")
                disposition = Disposition.REQUEUE
            try:
                if disposition is Disposition.ACK:
                    await message.ack()
                else:
                    await asyncio.sleep(_REQUEUE_PAUSE_S)
                    await message.nack(requeue=True)
            except BROKER_ERRORS as exc:
                # The channel died under us: the broker redelivers the message and the claim
                # guard makes that harmless.
                log.warning("message_not_settled", disposition=disposition.value, error=repr(exc))
        finally:
            structlog.contextvars.unbind_contextvars(
                "channel", "correlation_id", "attempt", "notification_id", "tenant_id"
            )

    async def stop(self, *, timeout_s: float | None = None) -> None:
        """SIGTERM: stop taking work, let in-flight deliveries finish (bounded), settle, close.

        Deliveries still running at the deadline are cancelled, their records handed back
        (PROCESSING → QUEUED) and their messages nacked back onto the queue, so another
        worker takes them at once instead of after the lease.
        """
        timeout_s = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception as exc:  # the channel may already be gone; unacked messages requeue
                log.warning("consumer_cancel_failed", error=repr(exc))
        log.info("worker_draining", in_flight=len(self._in_flight), timeout_s=timeout_s)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        except TimeoutError:
            await self._abandon_in_flight()
        if self._resolver is not None:
            await self._resolver.aclose()
        if self._http is not None:
            await self._http.aclose()
        if self._broker is not None:
            await self._broker.close()
        if self._db is not None:
            await self._db.close()
        log.info("worker_stopped", worker=self.worker_id)

    async def _abandon_in_flight(self) -> None:
        stuck = dict(self._in_flight)
        log.warning("worker_stop_timeout", in_flight=len(stuck))
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        for message in stuck.values():
            body = _json_or_empty(message.body)
            notification_id = body.get("notification_id")
            if self._db is not None and isinstance(notification_id, str):
                try:
                    await self._db.notifications.release(
                        tenant_id=str(body.get("tenant_id")),
                        notification_id=notification_id,
                        worker=self.worker_id,
                    )
                except Exception as exc:  # the lease then expires on its own
                    log.warning("release_failed", error=repr(exc))
            try:
                await message.nack(requeue=True)
            except Exception as exc:  # a closed channel requeues it anyway
                log.warning("nack_failed", error=repr(exc))


def _json_or_empty(raw: bytes) -> dict[str, object]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
