"""End-to-end figures and per-stage latencies, read from the records' own timestamps.

A record carries `created_at` (the API built it), `enqueued_at` (only where the sweep or a
replay published it: a send no longer stamps its confirm), `processing_at` (a worker's claim),
`attempts[].at` (the claimed record was read back and delivery began), `attempts[].duration_ms`
(subscriber read, provider config, render and the provider call) with
`attempts[].provider_ms` (the provider call alone), and `completed_at`.
MongoDB keeps dates to the millisecond, so stages shorter than that read as 0 or 1 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient

from benchkit.dbops import OwnCommands
from shared.domain import FINAL_STATUSES

FINAL = tuple(sorted(s.value for s in FINAL_STATUSES))
_PROJECTION = {
    "status": 1,
    "created_at": 1,
    "enqueued_at": 1,
    "processing_at": 1,
    "completed_at": 1,
    "attempts.at": 1,
    "attempts.duration_ms": 1,
    "attempts.provider_ms": 1,
}
_CHUNK = 500

Doc = dict[str, Any]

# stage name -> what it spans, shown in docs/benchmark.md and the JSON
STAGES = {
    "api": "created_at → enqueued_at, only for records that carry the stamp (sweep, replay); "
    "a send's API time is single_sends.latency_ms",
    "broker": "created_at (or enqueued_at) → processing_at: publish, confirm, the queue and "
    "the worker's prefetch buffer",
    "worker_db": "claim write + record read + subscriber read + provider config + render",
    "provider": "attempts[].provider_ms: the provider's HTTP call",
}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max (nearest rank), in the values' unit, rounded to 0.1."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))]

    return {
        "p50": round(rank(0.50), 1),
        "p95": round(rank(0.95), 1),
        "p99": round(rank(0.99), 1),
        "max": round(ordered[-1], 1),
    }


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds() * 1000


class RecordReader:
    """Reads the bench's records straight from the system's database."""

    def __init__(self, *, url: str, database: str, tenant_id: str) -> None:
        """Records of `tenant_id` in `database`."""
        # Its own commands are counted, so a phase's op counters can leave them out.
        self.own = OwnCommands()
        self.client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url, tz_aware=True, event_listeners=[self.own]
        )
        self._client = self.client
        self._col = self._client[database]["notifications"]
        self._tenant = tenant_id

    async def close(self) -> None:
        """Close the client."""
        await self._client.close()

    async def count_final(self, transaction_ids: Sequence[str]) -> int:
        """How many records of these transactions have reached a final status."""
        # Status is checked here, not in the query: with a second operator clause SecantusDB
        # can no longer use the (tenant_id, transaction_id) index and walks every record of
        # the tenant, which would make the bench's own polling a load on the database.
        total = 0
        for i in range(0, len(transaction_ids), _CHUNK):
            cursor = self._col.find(
                {
                    "tenant_id": self._tenant,
                    "transaction_id": {"$in": list(transaction_ids[i : i + _CHUNK])},
                },
                {"status": 1},
            )
            total += sum([1 async for d in cursor if d.get("status") in FINAL])
        return total

    async def fetch(self, transaction_ids: Sequence[str]) -> list[Doc]:
        """The timestamps of every record of these transactions."""
        docs: list[Doc] = []
        for i in range(0, len(transaction_ids), _CHUNK):
            cursor = self._col.find(
                {
                    "tenant_id": self._tenant,
                    "transaction_id": {"$in": list(transaction_ids[i : i + _CHUNK])},
                },
                _PROJECTION,
            )
            docs += [d async for d in cursor]
        return docs


async def wait_until(
    probe: Callable[[], Awaitable[bool]], *, timeout_s: float, every_s: float
) -> bool:
    """Poll `probe` until true or `timeout_s` passes; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await probe():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)


def end_to_end(docs: Sequence[Doc]) -> dict[str, Any]:
    """Delivered count, notifications/s from first created to last completed, latency, stages."""
    delivered = [d for d in docs if d.get("status") == "DELIVERED" and d.get("completed_at")]
    statuses: dict[str, int] = {}
    for d in docs:
        statuses[d.get("status", "?")] = statuses.get(d.get("status", "?"), 0) + 1
    if not delivered:
        return {"records": len(docs), "delivered": 0, "statuses": statuses, "per_s": 0.0}
    first = min(d["created_at"] for d in delivered)
    last = max(d["completed_at"] for d in delivered)
    span_s = max((last - first).total_seconds(), 1e-3)
    latencies = [_ms(d["completed_at"], d["created_at"]) or 0.0 for d in delivered]
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for d in delivered:
        attempt = (d.get("attempts") or [{}])[-1]
        for name, value in (
            ("api", _ms(d.get("enqueued_at"), d.get("created_at"))),
            ("broker", _ms(d.get("processing_at"), d.get("enqueued_at") or d.get("created_at"))),
            ("provider", attempt.get("provider_ms")),
        ):
            if value is not None:
                stages[name].append(value)
        claim = _ms(attempt.get("at"), d.get("processing_at"))
        duration, provider = attempt.get("duration_ms"), attempt.get("provider_ms")
        if claim is not None and duration is not None:
            stages["worker_db"].append(claim + duration - (provider or 0.0))
    return {
        "records": len(docs),
        "delivered": len(delivered),
        "statuses": statuses,
        "span_s": round(span_s, 3),
        "per_s": round(len(delivered) / span_s, 1),
        "latency_ms": percentiles(latencies),
        "stages_ms": {
            name: {**percentiles(v), "mean": round(sum(v) / len(v), 1)}
            for name, v in stages.items()
            if v  # no record carried what the stage spans (e.g. `api` without the stamp)
        },
    }
