"""The `providers` collection: a tenant's provider configs, credentials encrypted at rest."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer


class ProvidersRepo(Repo):
    """One config per (tenant, provider type)."""

    collection_name = "providers"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._active: Coalescer[tuple[str, str], None, list[Doc]] = Coalescer(self._active_batch)

    async def ensure_indexes(self) -> None:
        """Unique (tenant, provider_type); look-up by channel."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("provider_type", 1)], unique=True, name="tenant_type"
                ),
                IndexModel([("tenant_id", 1), ("channel", 1), ("priority", 1)]),
            ]
        )

    async def upsert(self, *, tenant_id: str, provider_type: str, fields: dict[str, Any]) -> Doc:
        """Create or replace the tenant's config of this provider type."""
        now = utcnow()
        await self.col.update_one(
            {"tenant_id": tenant_id, "provider_type": provider_type},
            {"$set": {**fields, "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
        doc = await self.col.find_one({"tenant_id": tenant_id, "provider_type": provider_type})
        assert doc is not None
        return doc

    async def list_all(self, *, tenant_id: str) -> list[Doc]:
        """Every config of the tenant."""
        cursor = self.col.find({"tenant_id": tenant_id}).sort("provider_type", ASCENDING)
        return [d async for d in cursor]

    async def active_for_channel(self, *, tenant_id: str, channel: str) -> list[Doc]:
        """Active configs for a channel, preferred (lowest priority number) first.

        When a worker's config cache expires, every message in flight asks at once; identical
        concurrent look-ups share one read, issued after each of them arrived.
        """
        return await self._active.submit((tenant_id, channel), None)

    async def _active_batch(self, key: tuple[str, str], callers: list[None]) -> list[list[Doc]]:
        tenant_id, channel = key
        cursor = self.col.find({"tenant_id": tenant_id, "channel": channel, "active": True}).sort(
            [("priority", ASCENDING), ("provider_type", ASCENDING)]
        )
        docs = [d async for d in cursor]
        return [[dict(d) for d in docs] for _ in callers]
