"""Delivery history for dashboards: the activity feed and per-day statistics.

Every query has a shape an index fits exactly, on `mongod` and on the embedded SecantusDB
(whose planner serves only "equalities, then one operator field" from a compound index and
none under a top-level `$or`; documents.py):

    filter given    driving query (window = a created_at range)       index
    transactionId   {tenant_id, transaction_id}                        (tenant_id, transaction_id)
    userId          {tenant_id, recipient, created_at: window}         (tenant_id, recipient, …)
    results         {tenant_id, status: s, created_at: window} per s   (tenant_id, status, …)
    otherwise       {tenant_id, channel: c, created_at: window} per c  (tenant_id, channel, …)
                    (the channels asked for, or all five)

The other filters (categories, …) are applied to what the driving query returns. One index
is new, `(tenant_id, channel, created_at)`: on the embedded server every index of the
collection is rewritten on every update of a record, so each costs about a tenth of the
send path's database rate; categories ride it as a filter rather than get their own.

SecantusDB reads every document a query matches before it sorts and limits, so a query over
a whole history costs the whole history. The feed therefore walks back from the newest in
time windows, sized from the density seen so far, until it has the page (and one more, for
`hasMore`): the work follows the page, not the collection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from shared.db.base import Doc, Repo, utcnow
from shared.domain import FINAL_STATUSES, Channel, Status

log = structlog.get_logger(__name__)

DEFAULT_LOOKBACK = timedelta(days=366)  # without startTime, the feed looks back this far
_FIRST_SPAN_S = 1.0
_MIN_SPAN_S = 0.05
_GROWTH = 8.0
_SAMPLE = 8  # matches enough to tell a density from
_MAX_WINDOWS = 64
_SLOW_WINDOWS = 24  # a call needing this many windows is logged: the sizing went wrong
_HINTS = 4096

PROJECTION = {
    "_id": 1,
    "transaction_id": 1,
    "recipient": 1,
    "channel": 1,
    "category": 1,
    "status": 1,
    "provider": 1,
    "failure_reason": 1,
    "created_at": 1,
    "delivered_at": 1,
    "workflow": 1,
    "environment": 1,
}

IN_FLIGHT = tuple(s.value for s in Status if s not in FINAL_STATUSES)


def statuses_for_results(results: list[str]) -> tuple[str, ...]:
    """The stored statuses behind the seed's results (`SENT` is every status in flight)."""
    out: list[str] = []
    for result in results:
        out += IN_FLIGHT if result == "SENT" else [result]
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """What `manage/get-notification-activity` asks for, in stored values."""

    channels: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    user_id: str | None = None
    transaction_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def hint_key(self, tenant_id: str) -> tuple[str, ...]:
        """What the density of matching records is remembered by: the filters and whether the
        view is live (no `endTime`) or historical, not the times themselves (a dashboard polls
        the same filters over a moving window; the newest records are often denser)."""
        return (
            tenant_id,
            "historical" if self.end is not None else "live",
            ",".join(self.channels),
            ",".join(self.categories),
            ",".join(self.statuses),
            self.user_id or "",
            self.transaction_id or "",
        )

    def admits(self, doc: Doc) -> bool:
        """True if a document returned by the driving query passes every filter."""
        created = doc["created_at"]
        return (
            (not self.channels or doc.get("channel") in self.channels)
            and (not self.categories or doc.get("category") in self.categories)
            and (not self.statuses or doc.get("status") in self.statuses)
            and (self.user_id is None or doc.get("recipient") == self.user_id)
            and (self.transaction_id is None or doc.get("transaction_id") == self.transaction_id)
            and (self.start is None or created >= self.start)
            and (self.end is None or created <= self.end)
        )


@dataclass(frozen=True, slots=True)
class Driver:
    """The index-fitting query a filter is driven by: equalities, then a time window."""

    equalities: list[Doc] = field(default_factory=list)  # one query per entry
    windowed: bool = True

    def queries(self, lo: datetime | None, hi: datetime | None) -> list[Doc]:
        """The filters for the window [lo, hi) (open where None)."""
        window: Doc = {}
        if lo is not None:
            window["$gte"] = lo
        if hi is not None:
            window["$lt"] = hi
        if not self.windowed or not window:
            return [dict(e) for e in self.equalities]
        return [{**e, "created_at": window} for e in self.equalities]


def driver_for(tenant_id: str, flt: ActivityFilter) -> Driver:
    """The driving query (see the module's table)."""
    tenant: Doc = {"tenant_id": tenant_id}
    if flt.transaction_id is not None:
        return Driver([{**tenant, "transaction_id": flt.transaction_id}], windowed=False)
    if flt.user_id is not None:
        return Driver([{**tenant, "recipient": flt.user_id}])
    if flt.statuses:
        return Driver([{**tenant, "status": s} for s in flt.statuses])
    channels = flt.channels or tuple(c.value for c in Channel)
    return Driver([{**tenant, "channel": c} for c in channels])


def _newest_first(doc: Doc) -> tuple[datetime, str]:
    return doc["created_at"], str(doc["_id"])


@dataclass(frozen=True, slots=True)
class _Hint:
    """What the last call with the same filters learned, for the next one's first window."""

    density: float  # matching records per second over the time it covered
    # (rank, created_at of the rank-th newest match) for ranks 1, 2, 4, …: a live view's next
    # call starts at the boundary holding enough records, crossing any gap in one query.
    ranks: tuple[tuple[int, datetime], ...] = ()

    def boundary(self, need: int) -> datetime | None:
        """A time with at least `need` matches after it (when last looked)."""
        return next((t for rank, t in self.ranks if rank >= need), None)

    def after(self, older: _Hint | None) -> _Hint:
        """This hint, keeping the older one's deeper ranks: the r-th newest match then still
        has at least r matches after it now."""
        if older is None or not self.ranks:
            return self
        deepest = self.ranks[-1][0]
        deeper = tuple((r, t) for r, t in older.ranks if r > deepest)
        return _Hint(self.density, self.ranks + deeper)

    def first_span(self, need: int) -> float:
        """Seconds that should hold `need` matches, a quarter more."""
        if not self.density:
            return _FIRST_SPAN_S
        return max(_MIN_SPAN_S, need / self.density * 1.25)


def _ranks(found: list[Doc]) -> tuple[tuple[int, datetime], ...]:
    ranks = {1 << i for i in range(len(found).bit_length()) if 1 << i <= len(found)}
    ranks.add(len(found))
    return tuple((r, found[r - 1]["created_at"]) for r in sorted(ranks) if r > 0)


class NotificationActivity(Repo):
    """Read-only queries over `notifications` for dashboards."""

    collection_name = "notifications"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hints: dict[tuple[str, ...], _Hint] = {}

    async def page(
        self,
        *,
        tenant_id: str,
        flt: ActivityFilter,
        skip: int,
        limit: int,
        now: datetime | None = None,
    ) -> tuple[list[Doc], bool]:
        """Newest first: the page and whether more follow."""
        driver = driver_for(tenant_id, flt)
        need = skip + limit + 1
        if not driver.windowed:
            docs = await self._run(driver.queries(None, None), flt)
            return docs[skip : skip + limit], len(docs) > skip + limit
        now = now or utcnow()
        # Exclusive upper bound; BSON dates count milliseconds, so +1 ms keeps `end` itself.
        top = flt.end + timedelta(milliseconds=1) if flt.end is not None else None
        floor = flt.start if flt.start is not None else now - DEFAULT_LOOKBACK
        anchor = top or now
        key = flt.hint_key(tenant_id)
        known = self._hints.get(key)
        hint = known or _Hint(density=0.0)
        span = hint.first_span(need)
        start = hint.boundary(need) if top is None else None
        found: list[Doc] = []
        hi = top
        lo = anchor
        for window in range(_MAX_WINDOWS):
            if window == 0 and start is not None:
                lo = max(start, floor)
            elif window == _MAX_WINDOWS - 1:
                lo = floor  # the last window takes all that is left, whatever it costs
            else:
                lo = max((hi or anchor) - timedelta(seconds=span), floor)
            batch = await self._run(driver.queries(lo, hi), flt)
            found += batch
            if len(found) >= need or lo <= floor:
                break
            span = _next_span(span, found=found, need=need, new=len(batch))
            hi = lo
        if window >= _SLOW_WINDOWS:
            log.warning("activity_many_windows", windows=window + 1, read=len(found), need=need)
        learned = _Hint(_density(found), _ranks(found) if top is None else ())
        self._remember(key, learned.after(known))
        return found[skip : skip + limit], len(found) > skip + limit

    async def _run(self, queries: list[Doc], flt: ActivityFilter) -> list[Doc]:
        """Run one window's queries together; what passes the filter, newest first."""
        results = await asyncio.gather(*(self._fetch(q) for q in queries))
        docs = [d for batch in results for d in batch if flt.admits(d)]
        docs.sort(key=_newest_first, reverse=True)
        return docs

    async def _fetch(self, query: Doc) -> list[Doc]:
        return [d async for d in self.col.find(query, PROJECTION)]

    def _remember(self, key: tuple[str, ...], hint: _Hint) -> None:
        if len(self._hints) >= _HINTS:
            self._hints.clear()
        self._hints[key] = hint

    def first_window_queries(
        self, *, tenant_id: str, flt: ActivityFilter, now: datetime | None = None
    ) -> list[Doc]:
        """The shape of the queries `page` makes (for `explain` checks)."""
        driver = driver_for(tenant_id, flt)
        top = flt.end + timedelta(milliseconds=1) if flt.end is not None else None
        anchor = top or now or utcnow()
        return driver.queries(anchor - timedelta(seconds=_FIRST_SPAN_S), top)


def _density(found: list[Doc]) -> float:
    """Matches per second over the time the matches themselves span (not the gaps before
    them: a burst after a quiet spell is as dense as the burst)."""
    if len(found) < 2:
        return 0.0
    newest: datetime = found[0]["created_at"]
    oldest: datetime = found[-1]["created_at"]
    return (len(found) - 1) / max((newest - oldest).total_seconds(), _MIN_SPAN_S)


def _next_span(span: float, *, found: list[Doc], need: int, new: int) -> float:
    """The next window.

    After an empty window (a gap in the history): `_GROWTH` times the last one. With a few
    matches (too few to tell a density): twice the last one. Otherwise what the density of
    the matches so far says the rest needs (a quarter more), between an eighth of the last
    window and `_GROWTH` times it: a burst after a gap shrinks the windows, but never so
    fast that a clustered sample sends them into a crawl.
    """
    if new == 0:
        return span * _GROWTH
    if len(found) < _SAMPLE:
        return span * 2
    estimate = (need - len(found)) / _density(found) * 1.25
    return min(max(estimate, span / _GROWTH, _MIN_SPAN_S), span * _GROWTH)
