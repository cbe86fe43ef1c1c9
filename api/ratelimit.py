"""Per-key rate limits shared by every API process, without a database command per request.

Budget: `limit` requests per fixed window of `window_s` seconds (aligned to the epoch), per key.
Each process leases slices of a key's budget from MongoDB (`RateLimitsRepo.lease`: one atomic
`$inc` per slice) and spends them from memory. The leased total only grows, and a lease is
granted only up to the limit, so all processes together never admit more than `limit`
requests in a window. Slices shrink as the budget runs low (an eighth of what was left at the
last lease), so little budget sits unspent in one process while another refuses.

What a response reports (`RateLimit: "…";r=…;t=…`) is the remaining budget as this process
last saw it, plus what it still holds: other processes may have spent some since.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.db.rate_limits import RateLimitsRepo
from shared.errors import RateLimited

_MAX_SLICE = 1000
_FIRST_SLICE_DIVISOR = 16
_LATER_SLICE_DIVISOR = 8
_MAX_BUCKETS = 50_000  # (key, window) pairs held in memory; older windows are dropped first


@dataclass(frozen=True, slots=True)
class RateDecision:
    """What the headers of a response say about the key's budget."""

    allowed: bool
    policy: str
    limit: int
    window_s: int
    remaining: int
    reset_s: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """IETF `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers)."""
        name = self.policy.encode()
        return [
            (b"ratelimit-policy", b'"%s";q=%d;w=%d' % (name, self.limit, self.window_s)),
            (b"ratelimit", b'"%s";r=%d;t=%d' % (name, self.remaining, self.reset_s)),
        ]


@dataclass(slots=True)
class _Bucket:
    tokens: int = 0  # leased by this process and not spent yet
    leased_total: int = 0  # the window's total across processes, as of our last lease
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    """One per API process."""

    def __init__(
        self,
        *,
        repo: RateLimitsRepo,
        default_limit: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._default_limit = default_limit
        self._window_s = window_s
        self._clock = clock
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    async def take(self, *, key_id: str, limit: int | None) -> RateDecision:
        """Spend one request of the key's budget if any is left; the decision either way."""
        budget = limit if limit is not None else self._default_limit
        now = self._clock()
        window_start = int(now // self._window_s) * self._window_s
        reset_s = max(1, math.ceil(window_start + self._window_s - now))
        bucket = self._bucket(key_id, window_start)
        if bucket.tokens <= 0:
            async with bucket.lock:  # one lease at a time per key; the others wait for it
                if bucket.tokens <= 0 and bucket.leased_total < budget:
                    await self._lease(bucket, key_id, window_start, budget)
        policy = "default" if limit is None else "key"
        if bucket.tokens <= 0:
            return RateDecision(False, policy, budget, self._window_s, 0, reset_s)
        bucket.tokens -= 1
        remaining = max(0, budget - bucket.leased_total) + bucket.tokens
        return RateDecision(True, policy, budget, self._window_s, remaining, reset_s)

    def refusal(self, decision: RateDecision) -> RateLimited:
        """The error a refused decision answers with."""
        return RateLimited(
            f"rate limit of {decision.limit} requests per {decision.window_s} s exceeded; "
            f"retry in {decision.reset_s} s",
            retry_after_s=decision.reset_s,
        )

    def _bucket(self, key_id: str, window_start: int) -> _Bucket:
        bucket = self._buckets.get((key_id, window_start))
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_before(window_start)
            bucket = self._buckets[(key_id, window_start)] = _Bucket()
        return bucket

    def _forget_before(self, window_start: int) -> None:
        stale = [k for k in self._buckets if k[1] < window_start]
        for k in stale or list(self._buckets):
            del self._buckets[k]

    async def _lease(self, bucket: _Bucket, key_id: str, window_start: int, budget: int) -> None:
        left = budget - bucket.leased_total
        divisor = _FIRST_SLICE_DIVISOR if bucket.leased_total == 0 else _LATER_SLICE_DIVISOR
        wanted = max(1, min(_MAX_SLICE, left // divisor))
        total = await self._repo.lease(
            key_id=key_id, window_start=window_start, window_s=self._window_s, wanted=wanted
        )
        # Granted: what of this slice still fits under the limit (others may have leased).
        granted = max(0, min(wanted, budget - (total - wanted)))
        bucket.tokens += granted
        bucket.leased_total = total
