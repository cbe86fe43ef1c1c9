"""The ops dashboard's figures for one tenant over the last hour, from its own records.

Per channel: notifications created per minute (throughput) and final results per minute;
per provider config: attempts and latency; the latest failures with their reasons; the open
circuits workers noted. Broker queue figures count every tenant's messages, so they are
shown only to the operator tenant (`NOTIFY_OPERATOR_TENANT`). Answers are cached a few
seconds per tenant and process, so a dashboard polling every second reads the database
once per cache period.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.db.base import Doc, utcnow
from shared.db.notifications.dashboard_activity import recent_activity
from shared.domain import Channel
from shared.timefmt import iso_z

if TYPE_CHECKING:
    from api.context import AppContext

WINDOW_MINUTES = 60
SCAN_LIMIT = 50_000
RECENT_FAILURES = 20
FAILED = frozenset({"FAILED", "RATE_LIMITED", "INVALID_CREDENTIAL", "NO_CHANNEL"})
_CACHE_S = 3.0


class DashboardStats:
    """Computes and caches each tenant's figures (one per API process)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool], tuple[float, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def for_tenant(self, ctx: AppContext, *, tenant_id: str) -> dict[str, Any]:
        """The figures, at most a few seconds old."""
        operator = tenant_id == ctx.settings.operator_tenant
        key = (tenant_id, operator)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._locks[tenant_id]:
            cached = self._cache.get(key)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            stats = await _compute(ctx, tenant_id=tenant_id, operator=operator)
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + _CACHE_S, stats)
            return stats


async def _compute(ctx: AppContext, *, tenant_id: str, operator: bool) -> dict[str, Any]:
    now = utcnow()
    start = (now - timedelta(minutes=WINDOW_MINUTES - 1)).replace(second=0, microsecond=0)
    docs = await recent_activity(
        ctx.db.notifications, tenant_id=tenant_id, since=start, limit=SCAN_LIMIT
    )
    circuits = await ctx.db.circuits.open_for_tenant(tenant_id=tenant_id)
    queues = await ctx.queue_stats.read() if operator else None
    return {
        "generatedAt": iso_z(now),
        "windowStart": iso_z(start),
        "minutes": [iso_z(start + timedelta(minutes=i)) for i in range(WINDOW_MINUTES)],
        "truncated": len(docs) >= SCAN_LIMIT,
        "channels": _channels(docs, start),
        "providers": _providers(docs),
        "recentFailures": _recent_failures(docs),
        "circuits": [
            {
                "provider": c.get("provider"),
                "providerType": c.get("provider_type"),
                "openedAt": iso_z(c.get("opened_at")),
                "retryAt": iso_z(c.get("retry_at")),
                "halfOpen": bool(c.get("retry_at") and c["retry_at"] <= now),
            }
            for c in circuits
        ],
        "queues": None
        if queues is None
        else [
            {
                "queue": q.name,
                "kind": q.kind,
                "channel": Channel(q.channel).api_name if q.channel else None,
                "messages": q.messages,
                "consumers": q.consumers,
            }
            for q in queues
            if q.kind != "delay" or q.messages
        ],
    }


def _minute(at: datetime | None, start: datetime) -> int | None:
    if at is None:
        return None
    index = int((at - start).total_seconds() // 60)
    return index if 0 <= index < WINDOW_MINUTES else None


def _channels(docs: list[Doc], start: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for channel in Channel:
        out[channel.api_name] = {
            "created": [0] * WINDOW_MINUTES,
            "results": {},
            "totals": defaultdict(int),
        }
    for doc in docs:
        entry = out.get(Channel(doc["channel"]).api_name) if doc.get("channel") else None
        if entry is None:
            continue
        status = str(doc.get("status"))
        entry["totals"][status] += 1
        created = _minute(doc.get("created_at"), start)
        if created is not None:
            entry["created"][created] += 1
        done = _minute(doc.get("completed_at"), start)
        if done is not None:
            series = entry["results"].setdefault(status, [0] * WINDOW_MINUTES)
            series[done] += 1
    for entry in out.values():
        entry["totals"] = dict(entry["totals"])
    return out


def _providers(docs: list[Doc]) -> list[dict[str, Any]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for doc in docs:
        for attempt in doc.get("attempts") or ():
            name = attempt.get("provider")
            if not name:
                continue
            if attempt.get("provider_ms") is not None:
                latencies[name].append(float(attempt["provider_ms"]))
            if attempt.get("outcome") != "DELIVERED":
                failures[name] += 1
    out = []
    for name in sorted(latencies.keys() | failures.keys()):
        values = sorted(latencies.get(name, []))
        out.append(
            {
                "provider": name,
                "attempts": len(values),
                "failures": failures.get(name, 0),
                "avgMs": round(sum(values) / len(values), 2) if values else None,
                "p50Ms": _percentile(values, 0.5),
                "p95Ms": _percentile(values, 0.95),
            }
        )
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, math.ceil(q * len(values)) - 1)], 2)


def _recent_failures(docs: list[Doc]) -> list[dict[str, Any]]:
    failed = [d for d in docs if d.get("status") in FAILED]
    failed.sort(key=lambda d: d.get("completed_at") or d["created_at"], reverse=True)
    return [
        {
            "notificationId": d["_id"],
            "transactionId": d.get("transaction_id"),
            "channel": Channel(d["channel"]).api_name,
            "userId": d.get("recipient"),
            "status": d.get("status"),
            "reason": d.get("failure_reason"),
            "detail": (d.get("failure_detail") or "")[:300] or None,
            "at": iso_z(d.get("completed_at") or d.get("created_at")),
        }
        for d in failed[:RECENT_FAILURES]
    ]
