"""One robust RabbitMQ connection per process: confirmed publishing and consumer channels.

`url` may list a cluster's nodes, comma-separated (`shared/messaging/nodes.py`): the process
connects to the first that answers and moves to the next one whenever its node goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
import orjson
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustConnection,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.domain import Channel
from shared.errors import BrokerUnavailable
from shared.messaging.nodes import NodeListConnection, node_urls
from shared.messaging.topology import Topology, declare_topology, delay_routing_key

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 5.0
# Between reconnect attempts (aio-pika's default is 5 s): with a node list, the next attempt
# goes to another node, so a short pause is what moves a process off a dead node quickly.
RECONNECT_INTERVAL_S = 1.0

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
        self._urls = node_urls(url)
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
        """Connect (retrying for up to `wait_s`), open the publish channel, declare topology.

        Each attempt tries the next node of the list, so one node down delays nothing.
        """
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(wait_s),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(BROKER_ERRORS),
            reraise=True,
        ):
            with attempt:
                connection = NodeListConnection(
                    self._urls,
                    first=attempt.retry_state.attempt_number - 1,
                    reconnect_interval=RECONNECT_INTERVAL_S,
                )
                await connection.connect(timeout=CONNECT_TIMEOUT_S)
                self._connection = connection
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        channel = await self.connection.channel(publisher_confirms=True)
        self._channel = channel
        # Declared through a robust channel, so aio-pika declares it all again (exchanges,
        # queues, bindings) on every reconnect, before consumers are restored.
        self._exchanges = await declare_topology(channel, self.topology)
        log.info("broker_connected", prefix=self.topology.prefix, node=self.node)

    @property
    def node(self) -> str | None:
        """`host:port` of the node the connection uses (or tries next), once connected."""
        connection = self._connection
        return connection.node if isinstance(connection, NodeListConnection) else None

    def _on_reconnect(self, *_: Any) -> None:
        log.info("broker_reconnected", prefix=self.topology.prefix, node=self.node)

    async def close(self) -> None:
        """Close the connection (channels close with it)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def ready_messages(self, queues: list[str]) -> dict[str, int | None]:
        """Messages ready in each queue, asked of the broker by a passive declare on a channel
        of its own (closed after); None for a queue it could not answer for."""
        out: dict[str, int | None] = dict.fromkeys(queues)
        channel: AbstractChannel | None = None
        try:
            for name in queues:
                if channel is None or channel.is_closed:
                    channel = await self.connection.channel()
                # The underlying channel: a robust one would repeat the declare on reconnect.
                underlay = await channel.get_underlay_channel()
                try:
                    declared = await underlay.queue_declare(name, passive=True)
                except BROKER_ERRORS:
                    channel = None  # a missing queue closes the channel
                    continue
                out[name] = int(declared.message_count or 0)
        except BROKER_ERRORS as exc:
            log.warning("queue_depth_unavailable", error=repr(exc))
        finally:
            if channel is not None and not channel.is_closed:
                await channel.close()
        return out

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

    async def publish_realtime(self, *, routing_key: str, body: Mapping[str, Any]) -> None:
        """A wake-up on `notifications.realtime`: transient, not mandatory (often nobody
        listens), confirmed; BrokerUnavailable if it cannot be."""
        message = aio_pika.Message(
            body=orjson.dumps(body),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            target = self._exchange(self.topology.realtime_exchange)
            async with asyncio.timeout(self._publish_timeout_s):
                await target.publish(message, routing_key=routing_key, mandatory=False)
        except BrokerUnavailable:
            raise
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"publish not confirmed: {type(exc).__name__}: {exc}") from exc

    async def publish_notification(
        self,
        *,
        channel: Channel,
        body: Mapping[str, Any],
        priority: int,
        correlation_id: str | None,
        delay_s: int = 0,
    ) -> None:
        """Send a notification message to its channel's queue, now or after `delay_s`.

        With quorum queues, priority 4-5 goes to the channel's high queue (topology.py).
        """
        headers = {"correlation_id": correlation_id, "attempt": body.get("attempt", 1)}
        if delay_s <= 0:
            await self.publish(
                exchange=self.topology.direct_exchange,
                routing_key=self.topology.work_routing_key(channel, priority),
                body=body,
                headers=headers,
                priority=priority,
                message_id=str(body.get("notification_id")),
                correlation_id=correlation_id,
            )
            return
        level, key = delay_routing_key(
            delay_s=delay_s, destination=self.topology.work_queue(channel, priority)
        )
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

    async def publish_fanout(self, *, body: Mapping[str, Any], message_id: str) -> None:
        """Send a message to the fan-out worker's queue (confirmed, persistent)."""
        await self.publish(
            exchange=self.topology.fanout_exchange,
            routing_key=self.topology.fanout_queue,
            body=body,
            message_id=message_id,
        )

    async def publish_to_queue(
        self,
        *,
        queue: str,
        body: Mapping[str, Any],
        delay_s: int = 0,
        message_id: str | None = None,
    ) -> None:
        """A confirmed, persistent message for one of the `events` worker's queues (named by
        the topology), now or after `delay_s` through the delay levels."""
        if delay_s <= 0:
            exchange, routing_key = self.topology.events_exchange, queue
        else:
            level, routing_key = delay_routing_key(delay_s=delay_s, destination=queue)
            exchange = self.topology.delay_level(level)
        await self.publish(
            exchange=exchange, routing_key=routing_key, body=body, message_id=message_id
        )

    def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            raise BrokerUnavailable("broker channel is closed")
        try:
            return self._exchanges[name]
        except KeyError:
            raise BrokerUnavailable(f"exchange {name} not declared") from None


async def connect_first(url: str, *, timeout_s: float) -> AbstractConnection:
    """A plain (not robust) connection to the first node of `url` that answers."""
    failure: BaseException | None = None
    for node in node_urls(url):
        try:
            async with asyncio.timeout(timeout_s + 1):
                return await aio_pika.connect(node, timeout=timeout_s)
        except BROKER_ERRORS as exc:
            failure = exc
    assert failure is not None  # node_urls never returns an empty list
    raise failure
