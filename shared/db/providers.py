"""The `providers` collection: a tenant's provider configs, credentials encrypted at rest."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer

_LEGACY_INDEX = "tenant_type"  # one config per provider type, before configs had ids


class ProvidersRepo(Repo):
    """Provider configs, each named by a `provider_id` unique within the tenant."""

    collection_name = "providers"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._active: Coalescer[tuple[str, str], None, list[Doc]] = Coalescer(self._active_batch)

    async def ensure_indexes(self) -> None:
        """Unique (tenant, provider_id); look-up by channel in priority order."""
        with contextlib.suppress(OperationFailure):  # never created, or already dropped
            await self.col.drop_index(_LEGACY_INDEX)
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("provider_id", 1)], unique=True, name="tenant_provider"
                ),
                IndexModel([("tenant_id", 1), ("channel", 1), ("priority", 1)]),
            ]
        )

    async def upsert(self, *, tenant_id: str, provider_id: str, fields: dict[str, Any]) -> Doc:
        """Create or replace the tenant's config named `provider_id`."""
        now = utcnow()
        key = {"tenant_id": tenant_id, "provider_id": provider_id}
        await self.col.update_one(
            key,
            {"$set": {**fields, "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
        doc = await self.col.find_one(key)
        assert doc is not None
        return doc

    async def list_configs(self, *, tenant_id: str, include_inactive: bool) -> list[Doc]:
        """The tenant's active configs, or all of them, by channel then preference."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if not include_inactive:
            query["active"] = True
        cursor = self.col.find(query).sort(
            [("channel", ASCENDING), ("priority", ASCENDING), ("provider_id", ASCENDING)]
        )
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
            [("priority", ASCENDING), ("provider_id", ASCENDING)]
        )
        docs = [d async for d in cursor]
        return [[dict(d) for d in docs] for _ in callers]
