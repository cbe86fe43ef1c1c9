"""The `inbox_messages` collection: in-app feed items."""

from __future__ import annotations

from pymongo import IndexModel

from shared.db.base import Doc, Repo


class InboxRepo(Repo):
    """In-app messages; the in-app channel delivers by writing here."""

    collection_name = "inbox_messages"

    async def ensure_indexes(self) -> None:
        """Feed order and unseen/unread counts; one item per notification."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("subscriber_id", 1), ("feed_id", 1), ("created_at", -1)]
                ),
                IndexModel([("tenant_id", 1), ("subscriber_id", 1), ("seen", 1), ("read", 1)]),
                IndexModel(
                    [("tenant_id", 1), ("notification_id", 1)],
                    unique=True,
                    name="tenant_notification",
                ),
            ]
        )

    async def upsert_for_notification(self, doc: Doc) -> None:
        """Insert the item once per notification, so a redelivery adds nothing."""
        await self.col.update_one(
            {"tenant_id": doc["tenant_id"], "notification_id": doc["notification_id"]},
            {"$setOnInsert": doc},
            upsert=True,
        )

    async def list_for(self, *, tenant_id: str, subscriber_id: str, limit: int = 50) -> list[Doc]:
        """Newest first."""
        cursor = (
            self.col.find({"tenant_id": tenant_id, "subscriber_id": subscriber_id})
            .sort("created_at", -1)
            .limit(limit)
        )
        return [d async for d in cursor]
