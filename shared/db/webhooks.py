"""The `webhooks` and `webhook_deliveries` collections: tenants' endpoints and every attempt.

A delivery is one event for one endpoint, its `_id` made of both, so the fan-out of a
redelivered event stores nothing twice. Its attempts are appended as they end; a delivery
whose worker died mid-call carries `calling` until the next worker records it as interrupted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow

PENDING = "PENDING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"  # retries spent
SKIPPED = "SKIPPED"  # the endpoint was deleted or disabled before it was delivered


class WebhooksRepo(Repo):
    """Endpoints per tenant; the secret is stored encrypted by the caller."""

    collection_name = "webhooks"

    async def ensure_indexes(self) -> None:
        """One id per tenant; the active ones of a tenant found by index."""
        await self.col.create_indexes(
            [
                IndexModel([("tenant_id", ASCENDING), ("webhook_id", ASCENDING)], unique=True),
                IndexModel([("tenant_id", ASCENDING), ("active", ASCENDING)]),
            ]
        )

    async def create(self, *, tenant_id: str, webhook_id: str, fields: Doc) -> Doc:
        """Store a new endpoint, active."""
        now = utcnow()
        doc = {
            "tenant_id": tenant_id,
            "webhook_id": webhook_id,
            **fields,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        await self.col.insert_one(doc)
        return doc

    async def get(self, *, tenant_id: str, webhook_id: str) -> Doc | None:
        """One endpoint, active or not."""
        return await self.col.find_one({"tenant_id": tenant_id, "webhook_id": webhook_id})

    async def list_all(self, *, tenant_id: str) -> list[Doc]:
        """Every endpoint of the tenant, oldest first."""
        cursor = self.col.find({"tenant_id": tenant_id}).sort("_id", ASCENDING)
        return [d async for d in cursor]

    async def active_for(self, *, tenant_id: str) -> list[Doc]:
        """The tenant's active endpoints."""
        return [d async for d in self.col.find({"tenant_id": tenant_id, "active": True})]

    async def any_active(self, *, tenant_id: str) -> bool:
        """Whether the tenant has an active endpoint (one indexed look-up)."""
        doc = await self.col.find_one(
            {"tenant_id": tenant_id, "active": True}, projection={"_id": 1}
        )
        return doc is not None

    async def delete(self, *, tenant_id: str, webhook_id: str) -> bool:
        """Remove an endpoint; False if there was none."""
        result = await self.col.delete_one({"tenant_id": tenant_id, "webhook_id": webhook_id})
        return result.deleted_count == 1

    async def set_secret(
        self, *, tenant_id: str, webhook_id: str, secret_enc: str, previous: Doc | None
    ) -> Doc | None:
        """A new secret; the old one keeps signing beside it until `previous["until"]`."""
        return await self.col.find_one_and_update(
            {"tenant_id": tenant_id, "webhook_id": webhook_id},
            {
                "$set": {
                    "secret_enc": secret_enc,
                    "previous_secret": previous,
                    "updated_at": utcnow(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def note_success(self, *, tenant_id: str, webhook_id: str) -> None:
        """A delivery got through: the endpoint is no longer failing."""
        await self.col.update_one(
            {"tenant_id": tenant_id, "webhook_id": webhook_id, "failing_since": {"$exists": True}},
            {"$unset": {"failing_since": ""}},
        )

    async def note_failure(self, *, tenant_id: str, webhook_id: str, at: datetime) -> datetime:
        """A delivery failed: when the endpoint's run of failures began."""
        await self.col.update_one(
            {
                "tenant_id": tenant_id,
                "webhook_id": webhook_id,
                "failing_since": {"$exists": False},
            },
            {"$set": {"failing_since": at}},
        )
        doc = await self.get(tenant_id=tenant_id, webhook_id=webhook_id)
        since = doc.get("failing_since") if doc else None
        return since if isinstance(since, datetime) else at

    async def disable(self, *, tenant_id: str, webhook_id: str, reason: str) -> bool:
        """Stop delivering to an endpoint; True if this call disabled it."""
        result = await self.col.update_one(
            {"tenant_id": tenant_id, "webhook_id": webhook_id, "active": True},
            {"$set": {"active": False, "disabled_at": utcnow(), "disabled_reason": reason}},
        )
        return result.modified_count == 1


class WebhookDeliveriesRepo(Repo):
    """One document per (event, endpoint), with every attempt."""

    collection_name = "webhook_deliveries"

    async def ensure_indexes(self) -> None:
        """An endpoint's deliveries, newest first; the sweep's overdue ones across tenants."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [
                        ("tenant_id", ASCENDING),
                        ("webhook_id", ASCENDING),
                        ("created_at", DESCENDING),
                    ]
                ),
                IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
            ]
        )

    async def create(self, doc: Doc) -> bool:
        """Store a new delivery, due now; False if it exists (a redelivered fan-out)."""
        now = utcnow()
        try:
            await self.col.insert_one(
                {
                    **doc,
                    "status": PENDING,
                    "attempts": [],
                    "attempt_count": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, *, tenant_id: str, delivery_id: str) -> Doc | None:
        """One delivery."""
        return await self.col.find_one({"_id": delivery_id, "tenant_id": tenant_id})

    async def start_call(
        self, *, tenant_id: str, delivery_id: str, n: int, until: datetime
    ) -> bool:
        """Take attempt `n` until `until` (a crash leaves the mark, which then lapses);
        False if another call holds it or the delivery moved on."""
        now = utcnow()
        result = await self.col.update_one(
            {
                "_id": delivery_id,
                "tenant_id": tenant_id,
                "status": PENDING,
                "attempt_count": n - 1,
                "calling.until": {"$not": {"$gt": now}},
            },
            {"$set": {"calling": {"n": n, "at": now, "until": until}}},
        )
        return result.modified_count == 1

    async def take_overdue(
        self, *, due_before: datetime, hold_until: datetime, limit: int
    ) -> list[Doc]:
        """PENDING deliveries whose job is overdue (lost), each taken by moving its due time."""
        taken: list[Doc] = []
        cursor = self.col.find({"status": PENDING, "next_attempt_at": {"$lt": due_before}}).limit(
            limit
        )
        async for doc in cursor:
            result = await self.col.update_one(
                {"_id": doc["_id"], "next_attempt_at": doc["next_attempt_at"]},
                {"$set": {"next_attempt_at": hold_until}},
            )
            if result.modified_count == 1:
                taken.append(doc)
        return taken

    async def record_attempt(
        self,
        *,
        tenant_id: str,
        delivery_id: str,
        attempt: Doc,
        status: str,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Append attempt `attempt["n"]` (once) and set the delivery's status."""
        fields: dict[str, Any] = {
            "status": status,
            "updated_at": utcnow(),
            "attempt_count": attempt["n"],
        }
        if status == DELIVERED:
            fields["delivered_at"] = attempt["at"]
        if next_attempt_at is not None:
            fields["next_attempt_at"] = next_attempt_at
        result = await self.col.update_one(
            {
                "_id": delivery_id,
                "tenant_id": tenant_id,
                "status": PENDING,
                "attempt_count": attempt["n"] - 1,
            },
            {"$push": {"attempts": attempt}, "$set": fields, "$unset": {"calling": ""}},
        )
        return result.modified_count == 1

    async def skip(self, *, tenant_id: str, delivery_id: str, reason: str) -> None:
        """Never to be delivered (the endpoint is gone or disabled)."""
        await self.col.update_one(
            {"_id": delivery_id, "tenant_id": tenant_id, "status": PENDING},
            {
                "$set": {"status": SKIPPED, "skip_reason": reason, "updated_at": utcnow()},
                "$unset": {"calling": ""},
            },
        )

    async def page(
        self, *, tenant_id: str, webhook_id: str, page: int, page_size: int
    ) -> tuple[list[Doc], int]:
        """An endpoint's deliveries, newest first, and their total."""
        query = {"tenant_id": tenant_id, "webhook_id": webhook_id}
        cursor = (
            self.col.find(query)
            .sort("created_at", DESCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [d async for d in cursor]
        return items, await self.col.count_documents(query)

    async def for_event(self, *, tenant_id: str, event_id: str) -> list[Doc]:
        """Every delivery of one event (tests and operators)."""
        return [d async for d in self.col.find({"tenant_id": tenant_id, "event_id": event_id})]
