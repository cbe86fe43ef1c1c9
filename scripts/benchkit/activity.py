"""The `activity` phase: dashboard queries against a large history while the pipeline sends.

1. `records` notifications are written straight into the system's database (the bootstrap
   tenant), spread over the last 30 days, with varied channels, categories, results, users
   and transactions (10 records each): the history a dashboard reads.
2. Dashboard clients poll: each calls `manage/get-notification-activity` (a rotation of
   filters: none, a channel, failures, in flight, one user, one transaction, one day, a deep
   page) and `manage/get-delivery-status` (a transaction of the history), then waits
   `POLL_S`; first with the system idle, then while a burst of `manage/send` is delivered.
3. Latency p50 / p99 per RPC and per filter, in both conditions, and the goal (p99 < 50 ms
   under load) as reported, never asserted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from benchkit.load import LoadGenerator, LoadResult
from benchkit.records import percentiles
from shared.db.base import utcnow
from shared.db.client import connect_database
from shared.db.notifications.documents import to_document
from shared.domain import Category, Channel, Status
from shared.records import Content, NotificationRecord

GOAL_P99_MS = 50.0
POLL_S = 0.2
HISTORY = timedelta(days=30)
_BATCH = 1000
_PER_TRANSACTION = 10
# History is final: a record in flight for days would be the maintenance sweep's work on
# every pass (it looks at every QUEUED record), a load no real history puts on the database.
_STATUSES = [Status.DELIVERED] * 8 + [Status.FAILED, Status.OPTED_OUT, Status.CANCELLED]
_ACTIVITY = "/api/v1/notifications/manage/get-notification-activity"
_STATUS = "/api/v1/notifications/manage/get-delivery-status"


def _history_record(tenant_id: str, i: int, users: list[str], now: Any) -> dict[str, Any]:
    record = NotificationRecord.new(
        tenant_id=tenant_id,
        channel=list(Channel)[i % len(Channel)],
        recipient=users[i % len(users)],
        source="bench.activity",
        transaction_id=f"txn_bench_{i // _PER_TRANSACTION:08d}",
        category=list(Category)[i % len(Category)].value,
        content=Content(title="History", body=f"Record {i}"),
    )
    doc = to_document(record)
    doc["created_at"] = now - HISTORY * random.random()
    doc["status"] = _STATUSES[i % len(_STATUSES)].value
    doc["enqueued_at"] = doc["created_at"]
    doc["completed_at"] = doc["updated_at"] = doc["created_at"]
    return doc


async def load_history(
    *,
    url: str,
    database: str,
    tenant_id: str,
    records: int,
    users: list[str],
    say: Callable[..., Any],
) -> dict[str, Any]:
    """Write the history in batches; how long it took."""
    db = connect_database(url=url, name=database, timeout_ms=10_000)
    now = utcnow()
    started = time.perf_counter()
    try:
        for first in range(0, records, _BATCH):
            docs = [
                _history_record(tenant_id, i, users, now)
                for i in range(first, min(records, first + _BATCH))
            ]
            await db.notifications.col.insert_many(docs, ordered=False)
            if first and first % (_BATCH * 20) == 0:
                say(f"activity: {first:,} of {records:,} history records written")
    finally:
        await db.close()
    elapsed = time.perf_counter() - started
    return {"records": records, "seconds": round(elapsed, 1), "per_s": round(records / elapsed)}


def _filters(users: list[str], records: int) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    transactions = max(1, records // _PER_TRANSACTION)

    def one_day() -> dict[str, Any]:
        end = utcnow() - timedelta(days=random.randint(1, 28))
        return {
            "startTime": (end - timedelta(days=1)).isoformat(),
            "endTime": end.isoformat(),
        }

    return [
        ("recent", lambda: {}),
        ("channel", lambda: {"channels": ["PUSH"]}),
        ("failed", lambda: {"results": ["FAILED"]}),
        ("in_flight", lambda: {"results": ["SENT"]}),
        ("user", lambda: {"userId": random.choice(users)}),
        ("transaction", lambda: {"transactionId": _txn(random.randrange(transactions))}),
        ("one_day", one_day),
        ("page_5", lambda: {"page": 5}),
    ]


def _txn(n: int) -> str:
    return f"txn_bench_{n:08d}"


class _Dashboards:
    """Clients that query back to back until told to stop; latencies by RPC and filter."""

    def __init__(self, gen: LoadGenerator, users: list[str], records: int) -> None:
        self.gen = gen
        self.filters = _filters(users, records)
        self.transactions = max(1, records // _PER_TRANSACTION)
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    async def client(self, stop: asyncio.Event, seed: int, min_calls: int) -> None:
        calls = 0
        while not stop.is_set() or calls < min_calls:
            index = seed + calls
            name, make = self.filters[index % len(self.filters)]
            await self._timed(f"activity:{name}", _ACTIVITY, {"pageSize": 50, **make()})
            txn = _txn(random.randrange(self.transactions))
            await self._timed("delivery_status", _STATUS, {"transactionId": txn})
            calls += 1
            await asyncio.sleep(POLL_S)

    async def _timed(self, name: str, path: str, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            status, _ = await self.gen.call(path, body)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            return
        if status != 200:
            self.errors[f"{name}: HTTP {status}"] += 1
            return
        self.ms[name].append((time.perf_counter() - started) * 1000)

    def figures(self) -> dict[str, Any]:
        activity = [v for k, vs in self.ms.items() if k.startswith("activity:") for v in vs]
        return {
            "get_notification_activity": {"calls": len(activity), **percentiles(activity)},
            "get_delivery_status": {
                "calls": len(self.ms["delivery_status"]),
                **percentiles(self.ms["delivery_status"]),
            },
            "by_filter": {
                k.split(":", 1)[1]: {"calls": len(v), **percentiles(v)}
                for k, v in sorted(self.ms.items())
                if k.startswith("activity:")
            },
            "errors": dict(self.errors),
        }


async def _measure(
    gen: LoadGenerator,
    users: list[str],
    records: int,
    *,
    clients: int,
    min_calls: int,
    during: Callable[[], Awaitable[LoadResult]] | None,
) -> tuple[dict[str, Any], LoadResult | None]:
    dashboards = _Dashboards(gen, users, records)
    stop = asyncio.Event()
    if during is None:
        stop.set()
    tasks = [
        asyncio.create_task(dashboards.client(stop, seed=i, min_calls=min_calls))
        for i in range(clients)
    ]
    outcome = None
    if during is not None:
        outcome = await during()
        stop.set()
    await asyncio.gather(*tasks)
    return dashboards.figures(), outcome


async def measure_activity(
    *,
    gen: LoadGenerator,
    url: str,
    database: str,
    tenant_id: str,
    users: list[str],
    records: int,
    burst: Callable[[], Awaitable[LoadResult]],
    clients: int,
    say: Callable[..., Any],
) -> dict[str, Any]:
    """The phase's figures: history load, then queries idle and under the burst."""
    say(f"activity: writing {records:,} history records into the database")
    history = await load_history(
        url=url, database=database, tenant_id=tenant_id, records=records, users=users, say=say
    )
    say(f"activity: history written in {history['seconds']} s; queries with the system idle")
    idle, _ = await _measure(gen, users, records, clients=clients, min_calls=16, during=None)
    say("activity: queries while manage/send runs at full rate")
    loaded, load = await _measure(gen, users, records, clients=clients, min_calls=5, during=burst)
    assert load is not None
    p99 = loaded["get_notification_activity"]["p99"]
    status_p99 = loaded["get_delivery_status"]["p99"]
    return {
        "history": history,
        "clients": clients,
        "poll_s": POLL_S,
        "idle": idle,
        "under_load": loaded,
        "pipeline_during": {
            "requests": load.requests,
            "accepted": load.accepted,
            "accepted_per_s": round(load.accepted / max(load.elapsed_s, 1e-9), 1),
            "errors": dict(load.errors),
        },
        "goal_p99_lt_50_ms_under_load": {
            "get_notification_activity": {"value": p99, "met": p99 < GOAL_P99_MS},
            "get_delivery_status": {"value": status_p99, "met": status_p99 < GOAL_P99_MS},
        },
    }


def render_activity(activity: dict[str, Any], console: Console) -> None:
    """The phase's table."""
    history = activity["history"]
    table = Table(
        title=f"activity: {history['records']:,} records in the database "
        f"(written at {history['per_s']:,}/s), {activity['clients']} dashboard clients polling "
        f"every {activity['poll_s']} s; "
        f"manage/send during the load: {activity['pipeline_during']['accepted_per_s']:,.0f}/s"
    )
    for col in ("query", "idle p50 / p99 ms", "under load p50 / p99 ms", "calls under load"):
        table.add_column(col)
    idle, loaded = activity["idle"], activity["under_load"]
    rows = [
        ("get-notification-activity (all)", "get_notification_activity"),
        ("get-delivery-status", "get_delivery_status"),
    ]
    for label, key in rows:
        table.add_row(label, _pp(idle[key]), _pp(loaded[key]), str(loaded[key]["calls"]))
    for name, figures in loaded["by_filter"].items():
        table.add_row(
            f"  activity: {name}",
            _pp(idle["by_filter"].get(name)),
            _pp(figures),
            str(figures["calls"]),
        )
    console.print(table)
    goal = activity["goal_p99_lt_50_ms_under_load"]
    console.print(
        "activity goal p99 < 50 ms under load: "
        + "; ".join(
            f"{k}: {v['value']:.0f} ms {'met' if v['met'] else 'NOT met'}" for k, v in goal.items()
        )
    )


def _pp(figures: dict[str, Any] | None) -> str:
    if not figures or not figures.get("calls"):
        return ""
    return f"{figures['p50']:.0f} / {figures['p99']:.0f}"
