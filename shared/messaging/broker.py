"""One robust RabbitMQ connection per process: confirmed publishing and consumer channels."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
import orjson
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.domain import Channel
from shared.errors import BrokerUnavailable
from shared.messaging.topology import Topology, declare_topology, delay_routing_key

log = structlog.get_logger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    RuntimeError,  # aio-pika raises it for a channel closed under our feet
)


class Broker:
    """Owns the connection, a confirming publish channel and the declared topology."""

    def __init__(self, *, url: str, topology: Topology, publish_timeout_s: float) -> None:
        self._url = url
        self.topology = topology
        self._publish_timeout_s = publish_timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    @property
    def connection(self) -> AbstractRobustConnection:
        """The live connection (after `connect`)."""
        if self._connection is None:
            raise BrokerUnavailable("broker not connected")
        return self._connection

    async def connect(self, *, wait_s: float = 30.0) -> None:
        """Connect (retrying for up to `wait_s`), open the publish channel, declare topology."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(wait_s),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(BROKER_ERRORS),
            reraise=True,
        ):
            with attempt:
                self._connection = await aio_pika.connect_robust(self._url, timeout=5)
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        channel = await self.connection.channel(publisher_confirms=True)
        self._channel = channel
        # Declared through a robust channel, so aio-pika declares it all again (exchanges,
        # queues, bindings) on every reconnect, before consumers are restored.
        self._exchanges = await declare_topology(channel, self.topology)
        log.info("broker_connected", prefix=self.topology.prefix)

    def _on_reconnect(self, *_: Any) -> None:
        log.info("broker_reconnected", prefix=self.topology.prefix)

    async def close(self) -> None:
        """Close the connection (channels close with it)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def is_healthy(self) -> bool:
        """True while the connection and the publish channel are open."""
        conn, chan = self._connection, self._channel
        return bool(conn and not conn.is_closed and chan and not chan.is_closed)

    async def publish(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish persistently and wait for the broker's confirm, or raise BrokerUnavailable."""
        message = aio_pika.Message(
            body=orjson.dumps(body),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=priority,
            message_id=message_id,
            correlation_id=correlation_id,
            headers=dict(headers or {}),
        )
        try:
            target = self._exchange(exchange)
            async with asyncio.timeout(self._publish_timeout_s):
                confirmation = await target.publish(
                    message, routing_key=routing_key, mandatory=True
                )
        except BrokerUnavailable:
            raise
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"publish not confirmed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise BrokerUnavailable(f"publish refused by broker: {confirmation!r}")

    async def publish_notification(
        self,
        *,
        channel: Channel,
        body: Mapping[str, Any],
        priority: int,
        correlation_id: str | None,
        delay_s: int = 0,
    ) -> None:
        """Send a notification message to its channel's queue, now or after `delay_s`."""
        headers = {"correlation_id": correlation_id, "attempt": body.get("attempt", 1)}
        if delay_s <= 0:
            await self.publish(
                exchange=self.topology.direct_exchange,
                routing_key=channel.value,
                body=body,
                headers=headers,
                priority=priority,
                message_id=str(body.get("notification_id")),
                correlation_id=correlation_id,
            )
            return
        level, key = delay_routing_key(delay_s=delay_s, destination=self.topology.queue(channel))
        await self.publish(
            exchange=self.topology.delay_level(level),
            routing_key=key,
            body=body,
            headers=headers,
            priority=priority,
            message_id=str(body.get("notification_id")),
            correlation_id=correlation_id,
        )

    async def publish_digest(self, *, body: Mapping[str, Any], delay_s: int = 0) -> None:
        """Send a message to the digest worker's queue, now or after `delay_s`."""
        queue = self.topology.digest_queue
        exchange, routing_key = self.topology.digest_exchange, queue
        if delay_s > 0:
            level, routing_key = delay_routing_key(delay_s=delay_s, destination=queue)
            exchange = self.topology.delay_level(level)
        await self.publish(exchange=exchange, routing_key=routing_key, body=body)

    def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            raise BrokerUnavailable("broker channel is closed")
        try:
            return self._exchanges[name]
        except KeyError:
            raise BrokerUnavailable(f"exchange {name} not declared") from None
