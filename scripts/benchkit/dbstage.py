"""The database stage on its own: the pipeline's MongoDB calls per notification, nothing else.

Same server, a database of its own, the repositories the API and the workers use, in the order
they call them for one `manage/send` (and for a 100-recipient `send-bulk`), with as many
notifications in flight as the pipeline had. Its rate is what the database alone allows; if the
pipeline runs near it, the database is what sets the pace.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.db.base import utcnow
from shared.db.client import Database, connect_database
from shared.domain import Channel, Status
from shared.ids import new_id
from shared.records import Attempt, Content, DeliveryChange, NotificationRecord

T = TypeVar("T")
TENANT = "dbstage"
SUBSCRIBER = "dbstage-user"


class _Timer:
    """Collects the latency of every call, by operation."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, name: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        result = await call
        self.ms[name].append((time.perf_counter() - started) * 1000)
        return result

    def summary(self, per: int) -> dict[str, dict[str, float]]:
        return {
            name: {
                "calls_per_notification": round(len(values) / per, 3),
                "mean_ms": round(sum(values) / len(values), 2),
            }
            for name, values in self.ms.items()
        }


def _record(recipient: str, transaction_id: str) -> NotificationRecord:
    return NotificationRecord.new(
        tenant_id=TENANT,
        channel=Channel.EMAIL,
        recipient=recipient,
        transaction_id=transaction_id,
        source="bench.dbstage",
        content=Content(subject="s", body="b"),
    )


async def _worker_side(db: Database, timer: _Timer, notification_id: str) -> None:
    """What a worker does to the database for one delivered message."""
    repo = db.notifications
    worker = "dbstage-worker"
    doc = await timer(
        "claim_and_get",
        repo.claim_and_get(
            tenant_id=TENANT, notification_id=notification_id, worker=worker, lease_s=60
        ),
    )
    assert doc is not None
    await timer("subscriber", db.subscribers.get(tenant_id=TENANT, subscriber_id=SUBSCRIBER))
    attempt = Attempt(at=utcnow(), worker=worker, outcome="DELIVERED", n=1)
    await timer(
        "finish",
        repo.finish(
            tenant_id=TENANT,
            notification_id=notification_id,
            worker=worker,
            status=Status.DELIVERED,
            attempts=[attempt],
            change=DeliveryChange(provider="SENDGRID", provider_message_id=new_id("pm")),
        ),
    )


async def _run(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, int]:
    next_index = 0

    async def flow() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(flow() for _ in range(min(concurrency, count))))
    return time.perf_counter() - started, count


async def measure_database_alone(
    *, url: str, database: str, notifications: int, concurrency: int, bulk_size: int
) -> dict[str, Any]:
    """Notifications/s the database allows for `manage/send` and for `send-bulk` recipients."""
    db = connect_database(url=url, name=database, timeout_ms=5000)
    try:
        await db.ensure_indexes()
        await db.subscribers.create(
            tenant_id=TENANT, subscriber_id=SUBSCRIBER, profile={"email": "db@example.com"}
        )
        single = _Timer()

        async def send_one(_: int) -> None:
            record = _record(SUBSCRIBER, new_id("txn"))
            await single("insert", db.notifications.insert(record))
            await _worker_side(db, single, record.id)

        elapsed, done = await _run(notifications, concurrency, send_one)
        send_figures = {
            "notifications": done,
            "concurrency": concurrency,
            "per_s": round(done / elapsed, 1),
            "ops": single.summary(done),
        }

        bulk = _Timer()
        calls = max(1, notifications // bulk_size)
        pending: asyncio.Queue[str] = asyncio.Queue()

        async def bulk_call(_: int) -> None:
            txn = new_id("txn")
            records = [_record(SUBSCRIBER, txn) for _ in range(bulk_size)]
            await bulk("insert_many", db.notifications.insert_many(records))
            for notification_id in [r.id for r in records]:
                pending.put_nowait(notification_id)

        async def deliver(_: int) -> None:
            await _worker_side(db, bulk, await pending.get())

        started = time.perf_counter()
        await asyncio.gather(
            _run(calls, 4, bulk_call), _run(calls * bulk_size, concurrency, deliver)
        )
        elapsed = time.perf_counter() - started
        bulk_figures = {
            "recipients": calls * bulk_size,
            "per_s": round(calls * bulk_size / elapsed, 1),
            "ops": bulk.summary(calls * bulk_size),
        }
        return {"send": send_figures, "bulk": bulk_figures}
    finally:
        await db.client.drop_database(database)
        await db.close()
