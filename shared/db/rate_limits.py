"""The `rate_limits` collection: how much of each key's budget is leased in each window.

One document per (key, window). An API process leases a slice of the budget with one atomic
`$inc`; the counter only grows, so the slices granted across every process never add up to
more than the limit. The documents expire (TTL index) once their window is over.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from pymongo import IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.db.base import Repo
from shared.errors import DatabaseUnavailable


class RateLimitsRepo(Repo):
    """Leases of each key's budget, per fixed window."""

    collection_name = "rate_limits"

    async def ensure_indexes(self) -> None:
        """Expire a window's counter an hour after the window ends."""
        await self.col.create_indexes(
            [IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_at")]
        )

    async def lease(self, *, key_id: str, window_start: int, window_s: int, wanted: int) -> int:
        """Add `wanted` to the window's leased total; the total after this lease.

        The increment never upserts: SecantusDB can answer a racing upsert-and-return with no
        document though it applied the increment, and the total must be exact. The window's
        document is created first (once per key, window and process) when it is missing.
        """
        _id = f"{key_id}:{window_start}"
        for _ in range(3):
            doc = await self.col.find_one_and_update(
                {"_id": _id}, {"$inc": {"leased": wanted}}, return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return int(doc["leased"])
            expires = datetime.fromtimestamp(window_start + window_s, UTC) + timedelta(hours=1)
            with contextlib.suppress(DuplicateKeyError):  # another process created it
                await self.col.update_one(
                    {"_id": _id},
                    {"$setOnInsert": {"leased": 0, "expires_at": expires}},
                    upsert=True,
                )
        raise DatabaseUnavailable(f"rate-limit window {_id} could not be leased")
