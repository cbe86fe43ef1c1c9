"""The `dev_outbox` collection: what the sandbox provider 'sent' (development only)."""

from __future__ import annotations

from pymongo import IndexModel

from shared.db.base import Doc, Repo


class DevOutboxRepo(Repo):
    """Messages accepted by the sandbox provider, newest first."""

    collection_name = "dev_outbox"

    async def ensure_indexes(self) -> None:
        """By tenant and time."""
        await self.col.create_indexes([IndexModel([("tenant_id", 1), ("created_at", -1)])])

    async def record(self, doc: Doc) -> None:
        """Store one message (idempotent per notification and address)."""
        await self.col.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def list_recent(self, *, tenant_id: str | None, limit: int) -> list[Doc]:
        """Newest first, optionally one tenant's."""
        query: Doc = {} if tenant_id is None else {"tenant_id": tenant_id}
        cursor = self.col.find(query).sort("created_at", -1).limit(limit)
        return [d async for d in cursor]
