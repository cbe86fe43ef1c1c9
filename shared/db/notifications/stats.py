"""Counts for dashboards: notifications sent per week, month and year, and per day by channel
and result.

One aggregation per channel over `(tenant_id, channel, created_at)` groups by day and status
(plus whether a day's records fall in the week / month / year windows, so those counts are
exact, not whole days). On the embedded server that still reads every record of the period,
so answers are kept per tenant for a few seconds: dashboards poll, and a count a few seconds
old is what a dashboard shows anyway.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.db.base import Doc, Repo, utcnow
from shared.domain import Channel, Status

WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
YEAR = timedelta(days=365)
_CACHE_S = 15.0
_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class DayCount:
    """Records created on one UTC day on one channel that now have one result."""

    day: str  # YYYY-MM-DD
    channel: str
    result: str
    count: int


@dataclass(frozen=True, slots=True)
class Stats:
    """What `manage/get-notification-stats` reports."""

    weekly: int
    monthly: int
    yearly: int
    days: list[str]  # the period's days, oldest first
    daily: list[DayCount]


class NotificationStats(Repo):
    """Aggregations over `notifications`, cached briefly per (tenant, days)."""

    collection_name = "notifications"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: dict[tuple[str, int], tuple[float, Stats]] = {}

    async def stats(self, *, tenant_id: str, days: int, now: datetime | None = None) -> Stats:
        """Counts for the last year and the last `days` days (today included)."""
        key = (tenant_id, days)
        cached = self._cache.get(key)
        clock = time.monotonic()
        if now is None and cached is not None and cached[0] > clock:
            return cached[1]
        result = await self._compute(tenant_id, days, now or utcnow())
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (clock + _CACHE_S, result)
        return result

    async def _compute(self, tenant_id: str, days: int, now: datetime) -> Stats:
        first_day = (now - timedelta(days=days - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        since = min(now - YEAR, first_day)
        weekly = monthly = yearly = 0
        per_day: dict[tuple[str, str, str], int] = {}
        day_names = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
        in_period = set(day_names)
        rows = await asyncio.gather(
            *(self._by_day(tenant_id, channel, since, now) for channel in Channel)
        )
        for channel, group, n in (row for batch in rows for row in batch):
            weekly += n if group["week"] else 0
            monthly += n if group["month"] else 0
            yearly += n if group["year"] else 0
            if group["day"] in in_period:
                cell = (group["day"], channel.value, Status(group["status"]).result)
                per_day[cell] = per_day.get(cell, 0) + n
        daily = [DayCount(d, c, r, n) for (d, c, r), n in sorted(per_day.items())]
        return Stats(weekly, monthly, yearly, day_names, daily)

    async def _by_day(
        self, tenant_id: str, channel: Channel, since: datetime, now: datetime
    ) -> list[tuple[Channel, Doc, int]]:
        """One channel's records since `since`, counted by day and status."""
        match = {"tenant_id": tenant_id, "channel": channel.value, "created_at": {"$gte": since}}
        pipeline: list[Doc] = [
            {"$match": match},
            {
                "$group": {
                    "_id": {
                        "day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}},
                        "status": "$status",
                        "week": {"$gte": ["$created_at", now - WEEK]},
                        "month": {"$gte": ["$created_at", now - MONTH]},
                        "year": {"$gte": ["$created_at", now - YEAR]},
                    },
                    "n": {"$sum": 1},
                }
            },
        ]
        cursor = await self.col.aggregate(pipeline)
        return [(channel, row["_id"], int(row["n"])) async for row in cursor]
