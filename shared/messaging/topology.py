"""Every exchange and queue name, and their idempotent declaration (DESIGN.md §3).

Nothing else in the code spells a name: call the functions here. With the default empty
prefix the names are the spec's own (`notifications.direct`, `email.queue`); a prefix (tests,
several deployments on one broker) goes in front of every name: `t1a2b.email.queue`.

Classic queues (the default, for a single node) carry the seed's priority 1-5 themselves
(`x-max-priority`). With `quorum` (a RabbitMQ cluster: `NOTIFY_QUORUM_QUEUES`), every durable
work queue is a replicated quorum queue; RabbitMQ 3.10 quorum queues refuse `x-max-priority`,
so priority 4-5 goes to the channel's `<channel>.high.queue`, which its worker takes first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from shared.domain import Channel

DELAY_LEVELS = 28  # 2^28 s ≈ 8.5 years: any delay from 1 s up to that
MAX_PRIORITY = 5
HIGH_PRIORITY = 4  # from here up, a quorum topology routes to the channel's high queue


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of every exchange and queue for one prefix; `quorum` for a RabbitMQ cluster."""

    prefix: str
    quorum: bool = False

    def _name(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    @property
    def direct_exchange(self) -> str:
        """Routes a notification to its channel's queue (routing key = channel)."""
        return self._name("notifications.direct")

    @property
    def dlx_exchange(self) -> str:
        """Routes a failed message to its channel's DLQ (routing key = channel)."""
        return self._name("notifications.dlx")

    @property
    def digest_exchange(self) -> str:
        """Entry of digest events."""
        return self._name("notifications.digest")

    @property
    def fanout_exchange(self) -> str:
        """Entry of bulk / topic / broadcast expansions."""
        return self._name("notifications.fanout")

    @property
    def realtime_exchange(self) -> str:
        """Inbox updates to API instances, routing key `<tenant>.<subscriber>`."""
        return self._name("notifications.realtime")

    def realtime_queue(self, instance: str) -> str:
        """One API process's exclusive queue of inbox wake-ups (never durable)."""
        return self._name(f"realtime.{instance}")

    @property
    def delay_delivery_exchange(self) -> str:
        """Where level 0 of the delay infrastructure dead-letters into."""
        return self._name("delay.delivery")

    def queue(self, channel: Channel) -> str:
        """A channel's work queue, e.g. `email.queue`."""
        return self._name(f"{channel.value}.queue")

    def high_queue(self, channel: Channel) -> str:
        """A channel's queue for priority 4-5 when the work queues are quorum queues."""
        return self._name(f"{channel.value}.high.queue")

    def work_queues(self, channel: Channel) -> list[str]:
        """The queues a channel's worker consumes: the high one first, where there is one."""
        if self.quorum:
            return [self.high_queue(channel), self.queue(channel)]
        return [self.queue(channel)]

    def work_queue(self, channel: Channel, priority: int) -> str:
        """The queue a message of `priority` for `channel` goes to."""
        if self.quorum and priority >= HIGH_PRIORITY:
            return self.high_queue(channel)
        return self.queue(channel)

    def work_routing_key(self, channel: Channel, priority: int) -> str:
        """Routing key on the direct exchange for a message of `priority` for `channel`."""
        if self.quorum and priority >= HIGH_PRIORITY:
            return f"{channel.value}.high"
        return channel.value

    def work_queue_arguments(self, *, priority: bool) -> dict[str, Any]:
        """Arguments of a durable work queue: quorum, else classic v2 (with priorities)."""
        if self.quorum:
            return {"x-queue-type": "quorum"}
        if priority:
            return {"x-queue-version": 2, "x-max-priority": MAX_PRIORITY}
        return {"x-queue-version": 2}

    def dlq(self, channel: Channel) -> str:
        """A channel's dead-letter queue."""
        return self._name(f"{channel.value}.dlq")

    def dlq_lock(self, channel: Channel) -> str:
        """Exclusive queue held by whoever is operating on a DLQ (never declared durable)."""
        return self._name(f"{channel.value}.dlq.lock")

    @property
    def digest_queue(self) -> str:
        """Digest worker's queue."""
        return self._name("digest.queue")

    @property
    def fanout_queue(self) -> str:
        """Fan-out worker's queue."""
        return self._name("fanout.queue")

    @property
    def events_exchange(self) -> str:
        """Entry of the `events` worker's queues (routing key = the queue's name)."""
        return self._name("notifications.events")

    @property
    def events_queue(self) -> str:
        """Provider receipts to apply, webhook events to fan out, Novu mirroring jobs."""
        return self._name("events.queue")

    @property
    def webhooks_queue(self) -> str:
        """Outbound webhook deliveries (apart, so a hanging endpoint holds up no receipt)."""
        return self._name("webhooks.queue")

    def delay_level(self, level: int) -> str:
        """Name of delay level `level` (its exchange and its queue share it)."""
        return self._name(f"delay.l{level:02d}")

    def all_queues(self) -> list[str]:
        """Every queue this topology declares (for teardown and health checks)."""
        names = [q for c in Channel for q in self.work_queues(c)]
        names += [self.dlq(c) for c in Channel]
        names += [self.digest_queue, self.fanout_queue]
        names += [self.events_queue, self.webhooks_queue]
        names += [self.delay_level(level) for level in range(DELAY_LEVELS)]
        return names

    def all_exchanges(self) -> list[str]:
        """Every exchange this topology declares."""
        names = [
            self.direct_exchange,
            self.dlx_exchange,
            self.digest_exchange,
            self.fanout_exchange,
            self.realtime_exchange,
            self.delay_delivery_exchange,
            self.events_exchange,
        ]
        return names + [self.delay_level(level) for level in range(DELAY_LEVELS)]


_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _routing_word(value: str) -> str:
    # A topic word may not hold `.`, and `*` / `#` would turn a binding into a wildcard:
    # such ids (and very long ones) travel as a hash; `~` never starts a plain word.
    if _PLAIN_WORD.match(value):
        return value
    return "~" + hashlib.sha256(value.encode()).hexdigest()[:32]


def realtime_routing_key(*, tenant_id: str, subscriber_id: str) -> str:
    """`<tenant>.<subscriber>` on `notifications.realtime`, each made safe as a topic word."""
    return f"{_routing_word(tenant_id)}.{_routing_word(subscriber_id)}"


def delay_routing_key(*, delay_s: int, destination: str) -> tuple[int, str]:
    """Routing key for the delay infrastructure and the level to publish to.

    The key is the delay's 28 bits, most significant first, then the destination queue
    name; each level L holds the message 2^L s when bit L is 1 and passes it on otherwise.
    """
    delay_s = max(0, min(delay_s, (1 << DELAY_LEVELS) - 1))
    bits = ".".join("1" if delay_s >> level & 1 else "0" for level in reversed(range(DELAY_LEVELS)))
    top = delay_s.bit_length() - 1 if delay_s else 0
    return top, f"{bits}.{destination}"


async def declare_topology(
    channel: AbstractChannel, topology: Topology
) -> dict[str, AbstractExchange]:
    """Declare everything, idempotently; returns the exchanges by name."""
    t = topology
    ex: dict[str, AbstractExchange] = {}

    async def exchange(name: str, kind: aio_pika.ExchangeType) -> AbstractExchange:
        ex[name] = await channel.declare_exchange(name, kind, durable=True)
        return ex[name]

    direct = await exchange(t.direct_exchange, aio_pika.ExchangeType.DIRECT)
    dlx = await exchange(t.dlx_exchange, aio_pika.ExchangeType.DIRECT)
    delivery = await exchange(t.delay_delivery_exchange, aio_pika.ExchangeType.TOPIC)
    await exchange(t.realtime_exchange, aio_pika.ExchangeType.TOPIC)

    for ch in Channel:
        for priority in (1, HIGH_PRIORITY) if t.quorum else (1,):
            name = t.work_queue(ch, priority)
            work: AbstractQueue = await channel.declare_queue(
                name, durable=True, arguments=t.work_queue_arguments(priority=True)
            )
            await work.bind(direct, routing_key=t.work_routing_key(ch, priority))
            await work.bind(delivery, routing_key=f"#.{name}")
        dead = await channel.declare_queue(
            t.dlq(ch), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(dlx, routing_key=ch.value)

    for name, queue_name in (
        (t.digest_exchange, t.digest_queue),
        (t.fanout_exchange, t.fanout_queue),
        (t.events_exchange, t.events_queue),
        (t.events_exchange, t.webhooks_queue),
    ):
        exchange_obj = ex.get(name) or await exchange(name, aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments=t.work_queue_arguments(priority=False)
        )
        await queue.bind(exchange_obj, routing_key=queue_name)
        await queue.bind(delivery, routing_key=f"#.{queue_name}")

    await _declare_delay_levels(channel, t, ex)
    return ex


async def _declare_delay_levels(
    channel: AbstractChannel, t: Topology, ex: dict[str, AbstractExchange]
) -> None:
    """Levels 0..27, each a topic exchange plus a quorum queue with one fixed TTL."""
    for level in range(DELAY_LEVELS):
        name = t.delay_level(level)
        ex[name] = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        next_hop = t.delay_level(level - 1) if level else t.delay_delivery_exchange
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": (1 << level) * 1000,
                "x-dead-letter-exchange": next_hop,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        skip = "*." * (DELAY_LEVELS - 1 - level)
        await queue.bind(ex[name], routing_key=f"{skip}1.#")
    # Bit clear: pass straight on to the next level down (exchange-to-exchange binding).
    for level in range(DELAY_LEVELS):
        skip = "*." * (DELAY_LEVELS - 1 - level)
        target = ex[t.delay_level(level - 1)] if level else ex[t.delay_delivery_exchange]
        await target.bind(ex[t.delay_level(level)], routing_key=f"{skip}0.#")
