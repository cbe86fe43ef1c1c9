"""Quorum queues and node lists on the real broker: routing by priority, the high queue taken
first, replays back to the queue a message came from, a node list with a dead node in it.

Each test declares a topology of its own prefix (the session's system runs classic queues).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import aio_pika
import pytest

from shared.dlq.model import DeadLetterFilter
from shared.dlq.ops import DeadLetters
from shared.domain import Channel
from shared.messaging.broker import Broker
from shared.messaging.messages import deliver_message
from shared.messaging.nodes import NodeListConnection
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.integration.dead_letter_support import DeadLetterWriter, drain, queue_depth
from tests.support import System, delete_broker_objects, free_port, wait_for
from workers.consumer import Handling, Inbound
from workers.priority import PriorityConsumers, channel_consumers


@pytest.fixture
async def make_broker(settings: Settings) -> AsyncIterator[Callable[[bool], Broker]]:
    """Brokers on topologies of their own; connected by the test, removed afterwards."""
    made: list[Broker] = []

    def make(quorum: bool) -> Broker:
        topology = Topology(f"{settings.prefix}q{secrets.token_hex(3)}", quorum=quorum)
        broker = Broker(url=settings.rabbitmq_url, topology=topology, publish_timeout_s=5)
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            await broker.close()
            await delete_broker_objects(settings.rabbitmq_url, broker.topology)


def _dead_node() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


async def _publish(broker: Broker, name: str, *, priority: int, delay_s: int = 0) -> None:
    body = deliver_message(notification_id=name, tenant_id="t", channel="email", attempt=1)
    await broker.publish_notification(
        channel=Channel.EMAIL, body=body, priority=priority, correlation_id=None, delay_s=delay_s
    )


async def test_priority_4_and_5_go_to_the_high_queue_now_and_after_a_delay(
    settings: Settings, make_broker: Callable[[bool], Broker]
) -> None:
    broker = make_broker(True)
    await broker.connect()
    t = broker.topology
    for priority in range(1, 6):
        await _publish(broker, f"p{priority}", priority=priority)
    await _publish(broker, "d5", priority=5, delay_s=1)
    await _publish(broker, "d2", priority=2, delay_s=1)

    high, normal = t.high_queue(Channel.EMAIL), t.queue(Channel.EMAIL)

    async def arrived() -> bool:
        return (
            await queue_depth(settings.rabbitmq_url, high) == 3
            and await queue_depth(settings.rabbitmq_url, normal) == 4
        )

    await wait_for(arrived, timeout_s=15, what="the delayed messages to arrive")
    assert {m.message_id for m in await drain(settings.rabbitmq_url, high)} == {"p4", "p5", "d5"}
    assert {m.message_id for m in await drain(settings.rabbitmq_url, normal)} == {
        "p1",
        "p2",
        "p3",
        "d2",
    }
    # Both are quorum queues: a classic declaration of the same name is refused.
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        for name in (high, normal, t.digest_queue, t.fanout_queue):
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await channel.declare_queue(name, durable=True, arguments={"x-queue-version": 2})


class Recorder:
    """Handles each message in ~20 ms and records the order of the notification ids."""

    def __init__(self) -> None:
        self.order: list[str] = []

    async def handle(self, message: Inbound) -> Handling:
        await asyncio.sleep(0.02)
        self.order.append(str(message.body["notification_id"]))
        return Handling.ACK

    async def abandon(self, message: Inbound) -> None:
        """Nothing to hand back."""


@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_a_burst_of_priority_5_overtakes_a_backlog_of_priority_1(
    make_broker: Callable[[bool], Broker], quorum: bool
) -> None:
    broker = make_broker(quorum)
    await broker.connect()
    backlog, burst, prefetch = 300, 30, 10
    await asyncio.gather(*(_publish(broker, f"n{i}", priority=1) for i in range(backlog)))
    recorder = Recorder()
    service = channel_consumers(
        broker=broker, channel=Channel.EMAIL, handler=recorder, prefetch=prefetch
    )
    await service.start()
    try:

        async def under_way() -> bool:
            return len(recorder.order) >= 20

        await wait_for(under_way, what="the backlog to be under way")
        handled_before_burst = len(recorder.order)
        await asyncio.gather(*(_publish(broker, f"h{i}", priority=5) for i in range(burst)))

        async def all_handled() -> bool:
            return len(recorder.order) == backlog + burst

        await wait_for(all_handled, timeout_s=30, what="every message to be handled")
    finally:
        await service.stop(timeout_s=5)
    order = recorder.order
    last_high = max(i for i, name in enumerate(order) if name.startswith("h"))
    normal_ahead = sum(1 for name in order[handled_before_burst:last_high] if name[0] == "n")
    # Only what the worker already held when the burst came (its prefetch) goes before it;
    # the rest of the backlog (over 250 messages) waits.
    assert backlog - handled_before_burst > 250
    assert normal_ahead <= 2 * prefetch, " ".join(order[handled_before_burst : last_high + 1])
    expected = [f"n{i}" for i in range(backlog)] + [f"h{i}" for i in range(burst)]
    assert sorted(order) == sorted(expected)
    if isinstance(service, PriorityConsumers):
        assert service.normal.pauses >= 1  # the burst did hold the normal queue back


async def test_with_slots_to_spare_priority_5_does_not_hold_normal_traffic_back(
    make_broker: Callable[[bool], Broker],
) -> None:
    broker = make_broker(True)
    await broker.connect()
    recorder = Recorder()
    service = channel_consumers(broker=broker, channel=Channel.EMAIL, handler=recorder, prefetch=50)
    assert isinstance(service, PriorityConsumers)
    await service.start()
    try:
        for i in range(20):  # a trickle, far below what 50 slots take
            await _publish(broker, f"h{i}", priority=5)
            await _publish(broker, f"n{i}", priority=1)

        async def all_handled() -> bool:
            return len(recorder.order) == 40

        await wait_for(all_handled, timeout_s=15, what="every message to be handled")
    finally:
        await service.stop(timeout_s=5)
    # No high message ever waited for a slot, so the normal queue was never paused.
    assert service.normal.pauses == 0
    assert service.gate.free == 50


async def test_a_replay_goes_back_to_the_queue_the_message_came_from(
    system: System, settings: Settings, make_broker: Callable[[bool], Broker]
) -> None:
    broker = make_broker(True)
    await broker.connect()  # declares the quorum topology
    t = broker.topology
    assert system.db is not None
    tenant = f"tenant-{secrets.token_hex(4)}"
    async with DeadLetterWriter(url=settings.rabbitmq_url, topology=t, db=system.db) as writer:
        urgent = await writer.put(tenant_id=tenant, priority=5)
        routine = await writer.put(tenant_id=tenant, priority=2)
    # Through a node list whose first node is down, as a cluster's operator would run it.
    ops = DeadLetters(
        db=system.db, amqp_url=f"{_dead_node()},{settings.rabbitmq_url}", topology=t, timeout_s=5
    )
    listing = await ops.list_dead_letters(filters=DeadLetterFilter(tenant_id=tenant), limit=10)
    assert [x.info.original_queue for x in listing.letters] == [
        t.high_queue(Channel.EMAIL),
        t.queue(Channel.EMAIL),
    ]
    result = await ops.change_dead_letters(
        action="replay", filters=DeadLetterFilter(tenant_id=tenant), all_matching=True, actor="t"
    )
    assert {x.notification_id for x in result.affected} == {urgent["_id"], routine["_id"]}
    high = await drain(settings.rabbitmq_url, t.high_queue(Channel.EMAIL))
    normal = await drain(settings.rabbitmq_url, t.queue(Channel.EMAIL))
    assert [m.message_id for m in high] == [urgent["_id"]]
    assert [m.message_id for m in normal] == [routine["_id"]]


async def test_the_broker_skips_a_dead_node_of_its_list(
    settings: Settings, make_broker: Callable[[bool], Broker]
) -> None:
    template = make_broker(False)
    broker = Broker(
        url=f"{_dead_node()},{settings.rabbitmq_url}",
        topology=template.topology,
        publish_timeout_s=5,
    )
    try:
        await broker.connect(wait_s=10)
        live = urlsplit(settings.rabbitmq_url)
        assert broker.node == f"{live.hostname}:{live.port or 5672}"
        await _publish(broker, "x", priority=1)
    finally:
        await broker.close()


async def test_a_lost_connection_moves_to_the_next_node_and_comes_round_again(
    settings: Settings,
) -> None:
    dead = _dead_node()
    live = urlsplit(settings.rabbitmq_url)
    live_node = f"{live.hostname}:{live.port or 5672}"
    connection = NodeListConnection(
        [settings.rabbitmq_url, dead], fail_fast=False, reconnect_interval=0.1
    )
    tried: list[str] = []
    connection.close_callbacks.add(lambda *_: tried.append(connection.node))
    reconnected = asyncio.Event()
    connection.reconnect_callbacks.add(lambda *_: reconnected.set())
    try:
        await asyncio.wait_for(connection.connect(timeout=2), timeout=10)
        assert connection.node == live_node
        # The node goes away: the next attempt goes to the dead node, the one after back here.
        assert connection.transport is not None
        await connection.transport.connection.close(ConnectionError("node gone"))
        await asyncio.wait_for(reconnected.wait(), timeout=10)
        assert connection.node == live_node
        assert tried[:2] == [urlsplit(dead).netloc.split("@")[1], live_node]
    finally:
        await connection.close()
