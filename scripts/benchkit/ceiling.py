"""The ceiling: what the broker and this machine do with our messages and no application at all.

Persistent messages of the real size (a `deliver` body and its headers) go through a direct
exchange into a durable classic queue declared with the channel queues' arguments, published
with pipelined confirms (many in flight) and consumed with manual ack at high prefetch. The
publisher and the consumer are separate processes, like the API and a worker, so the figure is
the broker's and the machine's, not one Python process's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from typing import Any

import aio_pika
import aiormq
import orjson
import uvloop

from shared.ids import new_id
from shared.messaging.messages import deliver_message
from shared.messaging.topology import MAX_PRIORITY

CONFIRM_WINDOW = 512  # publishes in flight at once
PREFETCH = 500


@dataclass(frozen=True, slots=True)
class Ceiling:
    """Messages per second the bare broker path sustains on this machine, now."""

    messages: int
    message_bytes: int
    confirm_window: int
    prefetch: int
    publish_per_s: float
    consume_per_s: float
    publish_consume_per_s: float

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return asdict(self)


def _names(prefix: str) -> tuple[str, str]:
    return f"{prefix}.ceiling.direct", f"{prefix}.ceiling.queue"


def _message() -> aio_pika.Message:
    """One message exactly as the API publishes it (body, headers, properties)."""
    notification_id = new_id("ntf")
    correlation_id = uuid.uuid4().hex
    body = deliver_message(
        notification_id=notification_id, tenant_id="default", channel="email", attempt=1
    )
    return aio_pika.Message(
        body=orjson.dumps(body),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=1,
        message_id=notification_id,
        correlation_id=correlation_id,
        headers={"correlation_id": correlation_id, "attempt": 1},
    )


async def _declare(url: str, prefix: str) -> int:
    exchange_name, queue_name = _names(prefix)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(
            queue_name,
            durable=True,
            arguments={"x-queue-version": 2, "x-max-priority": MAX_PRIORITY},
        )
        await queue.bind(exchange, routing_key="email")
        await queue.purge()
    return len(_message().body)


async def _delete(url: str, prefix: str) -> None:
    exchange_name, queue_name = _names(prefix)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
        await channel.exchange_delete(exchange_name)


async def _publish(url: str, prefix: str, count: int, start_at: float) -> float:
    exchange_name, _ = _names(prefix)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name, ensure=False)
        window = asyncio.Semaphore(CONFIRM_WINDOW)
        failures = 0

        async def one() -> None:
            nonlocal failures
            try:
                confirmation = await exchange.publish(_message(), "email", mandatory=True)
                if not isinstance(confirmation, aiormq.spec.Basic.Ack):
                    failures += 1
            finally:
                window.release()

        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        tasks = []
        for _ in range(count):
            await window.acquire()
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        if failures:
            raise RuntimeError(f"{failures} ceiling publishes were not confirmed")
    return elapsed


async def _consume(url: str, prefix: str, count: int, start_at: float) -> float:
    _, queue_name = _names(prefix)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(queue_name, ensure=False)
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            orjson.loads(message.body)  # a worker parses every body
            await message.ack()
            received += 1
            if received >= count:
                done.set()

        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        await queue.consume(on_message, no_ack=False)
        await done.wait()
        return time.perf_counter() - started


def _run_publish(url: str, prefix: str, count: int, start_at: float) -> float:
    return uvloop.run(_publish(url, prefix, count, start_at))


def _run_consume(url: str, prefix: str, count: int, start_at: float) -> float:
    return uvloop.run(_consume(url, prefix, count, start_at))


async def measure_ceiling(*, url: str, prefix: str, messages: int) -> Ceiling:
    """Publish `messages`, consume them, then both at once; each side in its own process."""
    loop = asyncio.get_running_loop()
    size = await _declare(url, prefix)
    try:
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            # Warm both processes (imports, first connection) so start-up is not measured.
            warm = time.time()
            await asyncio.gather(
                loop.run_in_executor(pool, _run_publish, url, prefix, 200, warm),
                loop.run_in_executor(pool, _run_consume, url, prefix, 200, warm),
            )
            publish_s = await loop.run_in_executor(
                pool, _run_publish, url, prefix, messages, time.time()
            )
            consume_s = await loop.run_in_executor(
                pool, _run_consume, url, prefix, messages, time.time()
            )
            start_at = time.time() + 1.0  # both connect first, then start together
            both = await asyncio.gather(
                loop.run_in_executor(pool, _run_publish, url, prefix, messages, start_at),
                loop.run_in_executor(pool, _run_consume, url, prefix, messages, start_at),
            )
    finally:
        await _delete(url, prefix)
    return Ceiling(
        messages=messages,
        message_bytes=size,
        confirm_window=CONFIRM_WINDOW,
        prefetch=PREFETCH,
        publish_per_s=messages / publish_s,
        consume_per_s=messages / consume_s,
        publish_consume_per_s=messages / max(both),
    )
