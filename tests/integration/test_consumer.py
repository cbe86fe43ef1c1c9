"""The generic consumer on a queue of its own, with a handler that is not a delivery."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import aio_pika
import pytest

from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.support import wait_for
from workers.consumer import Consumer, Handling, Inbound


class ScriptedHandler:
    """Answers each message with the handling its body asks for; can hold one until released."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.abandoned: list[str] = []
        self.release = asyncio.Event()

    async def handle(self, message: Inbound) -> Handling:
        name = str(message.body["name"])
        self.seen.append((name, message.redelivered))
        wanted = str(message.body["then"])
        if wanted == "hold":
            await self.release.wait()
            return Handling.ACK
        if wanted == "requeue_once":
            return Handling.ACK if message.redelivered else Handling.REQUEUE
        if wanted == "raise":
            raise RuntimeError("boom")
        return Handling(wanted)

    async def abandon(self, message: Inbound) -> None:
        self.abandoned.append(str(message.body["name"]))


@pytest.fixture
async def lab(settings: Settings) -> AsyncIterator[tuple[Broker, str]]:
    """A connected broker and a fresh durable queue, deleted afterwards."""
    broker = Broker(
        url=settings.rabbitmq_url, topology=Topology(settings.prefix), publish_timeout_s=5
    )
    await broker.connect()
    name = f"{settings.prefix}.consumer-test.{secrets.token_hex(4)}"
    channel = await broker.connection.channel()
    await channel.declare_queue(name, durable=True)
    try:
        yield broker, name
    finally:
        await channel.queue_delete(name)
        await broker.close()


async def _publish(broker: Broker, queue: str, *bodies: bytes) -> None:
    channel = await broker.connection.channel()
    for body in bodies:
        await channel.default_exchange.publish(aio_pika.Message(body=body), routing_key=queue)
    await channel.close()


async def _depth(broker: Broker, queue: str) -> int:
    channel = await broker.connection.channel()
    declared = await channel.declare_queue(queue, passive=True)
    await channel.close()
    return int(declared.declaration_result.message_count or 0)


async def test_named_outcomes_are_carried_out(lab: tuple[Broker, str]) -> None:
    broker, queue = lab
    handler = ScriptedHandler()
    consumer = Consumer(broker=broker, queue=queue, handler=handler, prefetch=10)
    await consumer.start()
    try:
        await _publish(
            broker,
            queue,
            b'{"name": "a", "then": "ack"}',
            b'{"name": "r", "then": "reject"}',
            b'{"name": "q", "then": "requeue_once"}',
            b'{"name": "x", "then": "raise"}',
            b"not json",
        )

        async def settled() -> bool:
            names = [n for n, _ in handler.seen]
            return names.count("q") == 2 and names.count("x") >= 2

        await wait_for(settled, timeout_s=15, what="the requeued messages to come back")
        seen = handler.seen
        assert seen.count(("a", False)) == 1
        assert seen.count(("r", False)) == 1
        assert ("q", True) in seen  # REQUEUE: the broker delivered it again
        assert ("x", True) in seen  # an exception counts as REQUEUE
        assert all(name != "not json" for name, _ in seen)  # unparseable: rejected unseen
    finally:
        await consumer.stop(timeout_s=5)
    assert await _depth(broker, queue) == 1  # only "x", which always raises, is back


async def test_stop_drains_in_flight_work_and_abandons_what_overruns(
    lab: tuple[Broker, str],
) -> None:
    broker, queue = lab
    handler = ScriptedHandler()
    consumer = Consumer(broker=broker, queue=queue, handler=handler, prefetch=10)
    await consumer.start()
    await _publish(broker, queue, b'{"name": "slow", "then": "hold"}')

    async def taken() -> bool:
        return bool(handler.seen)

    await wait_for(taken, what="the message to be taken")
    await consumer.stop(timeout_s=0.5)
    assert handler.abandoned == ["slow"]
    assert await _depth(broker, queue) == 1  # nacked back for another process
