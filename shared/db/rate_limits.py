"""The `rate_limits` collection: how much of each key's budget is leased in each window.

One document per (key, window). An API process leases a slice of the budget with one atomic
`$inc`; the counter only grows, so the slices granted across every process never add up to
more than the limit. The documents expire (TTL index) once their window is over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import IndexModel, ReturnDocument

from shared.db.base import Repo


class RateLimitsRepo(Repo):
    """Leases of each key's budget, per fixed window."""

    collection_name = "rate_limits"

    async def ensure_indexes(self) -> None:
        """Expire a window's counter an hour after the window ends."""
        await self.col.create_indexes(
            [IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_at")]
        )

    async def lease(self, *, key_id: str, window_start: int, window_s: int, wanted: int) -> int:
        """Add `wanted` to the window's leased total; the total after this lease."""
        expires = datetime.fromtimestamp(window_start + window_s, UTC) + timedelta(hours=1)
        doc = await self.col.find_one_and_update(
            {"_id": f"{key_id}:{window_start}"},
            {"$inc": {"leased": wanted}, "$setOnInsert": {"expires_at": expires}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upsert with AFTER always returns the document
        return int(doc["leased"])
