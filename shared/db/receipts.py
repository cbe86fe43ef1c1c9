"""The `receipts` collection: provider delivery events as received, before and after applying.

The API stores each verified event here (raw, as the provider sent it) and answers; the
`events` worker applies it. An event is stored once per (tenant, provider, event id), so a
provider's retry or duplicate stores nothing new, and `applied_at` says it took effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError

from shared.db.base import Doc, Repo, utcnow

_DUPLICATE_KEY = 11000


class ReceiptsRepo(Repo):
    """Receipts keyed `<provider>:<event id>` within a tenant."""

    collection_name = "receipts"

    async def ensure_indexes(self) -> None:
        """One receipt per event id per provider per tenant; look-up of one message's events."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("receipt_id", ASCENDING)],
                    unique=True,
                    name="tenant_receipt",
                ),
                IndexModel([("tenant_id", ASCENDING), ("provider_message_id", ASCENDING)]),
                # Only receipts not yet applied carry `pending_since`: the sweep's look-up
                # stays small however many receipts are kept.
                IndexModel([("pending_since", ASCENDING)], sparse=True),
            ]
        )

    async def store(self, *, tenant_id: str, receipts: list[Doc]) -> list[str]:
        """Store new receipts (each with its `receipt_id`); duplicates are skipped. Every
        receipt id given comes back, stored now or before, so all of them get applied."""
        if not receipts:
            return []
        now = utcnow()
        docs = [
            {**r, "tenant_id": tenant_id, "received_at": now, "pending_since": now}
            for r in receipts
        ]
        try:
            await self.col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
        return list(dict.fromkeys(str(r["receipt_id"]) for r in receipts))

    async def get_many(self, *, tenant_id: str, receipt_ids: list[str]) -> list[Doc]:
        """The receipts named, in the order named (missing ones left out)."""
        found = {
            d["receipt_id"]: d
            async for d in self.col.find(
                {"tenant_id": tenant_id, "receipt_id": {"$in": receipt_ids}}
            )
        }
        return [found[i] for i in receipt_ids if i in found]

    async def mark_applied(
        self, *, tenant_id: str, receipt_id: str, outcome: str, notification_id: str | None
    ) -> None:
        """The receipt took effect (or was found to concern no known message)."""
        await self.col.update_one(
            {"tenant_id": tenant_id, "receipt_id": receipt_id},
            {
                "$set": {
                    "applied_at": utcnow(),
                    "outcome": outcome,
                    "notification_id": notification_id,
                },
                "$unset": {"pending_since": ""},
            },
        )

    async def count(self, *, tenant_id: str, **match: Any) -> int:
        """How many receipts of the tenant match (tests and operators)."""
        return await self.col.count_documents({"tenant_id": tenant_id, **match})

    async def unapplied_before(self, *, before: datetime, limit: int) -> list[Doc]:
        """Receipts stored before `before` and never applied (their message was lost)."""
        cursor = self.col.find({"pending_since": {"$lt": before}}).limit(limit)
        return [d async for d in cursor]
