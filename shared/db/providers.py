"""The `providers` collection: a tenant's provider configs per environment, credentials
encrypted at rest.

A config stored before environments existed has no `environment`: it belongs to development
(every API key of that time acted in development).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer
from shared.domain import Environment

# One config per provider type, before configs had ids; then one per id, before environments.
_LEGACY_INDEXES = ("tenant_type", "tenant_provider", "tenant_id_1_channel_1_priority_1")
DEVELOPMENT = Environment.DEVELOPMENT.value


def _in_environment(environment: str) -> Doc:
    # `None` also matches a config without the field (stored before environments existed).
    if environment == DEVELOPMENT:
        return {"environment": {"$in": [DEVELOPMENT, None]}}
    return {"environment": environment}


class ProvidersRepo(Repo):
    """Provider configs, each named by a `provider_id` unique within a tenant's environment."""

    collection_name = "providers"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._active: Coalescer[tuple[str, str, str], None, list[Doc]] = Coalescer(
            self._active_batch
        )

    async def ensure_indexes(self) -> None:
        """Unique (tenant, environment, provider_id); look-up by channel in priority order."""
        for name in _LEGACY_INDEXES:
            with contextlib.suppress(OperationFailure):  # never created, or already dropped
                await self.col.drop_index(name)
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("environment", 1), ("provider_id", 1)],
                    unique=True,
                    name="tenant_env_provider",
                ),
                IndexModel([("tenant_id", 1), ("environment", 1), ("channel", 1), ("priority", 1)]),
            ]
        )

    async def upsert(
        self, *, tenant_id: str, environment: str, provider_id: str, fields: dict[str, Any]
    ) -> Doc:
        """Create or replace the config named `provider_id` in the tenant's environment."""
        now = utcnow()
        key = {"tenant_id": tenant_id, **_in_environment(environment), "provider_id": provider_id}
        fields = {**fields, "environment": environment}
        await self.col.update_one(
            key,
            {"$set": {**fields, "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
        doc = await self.col.find_one(key)
        assert doc is not None
        return doc

    async def list_configs(
        self, *, tenant_id: str, environment: str | None, include_inactive: bool
    ) -> list[Doc]:
        """The environment's active configs, or all of them, by channel then preference;
        `environment=None`: every environment's (a receipt or a mirror names no environment)."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if environment is not None:
            query.update(_in_environment(environment))
        if not include_inactive:
            query["active"] = True
        cursor = self.col.find(query).sort(
            [("channel", ASCENDING), ("priority", ASCENDING), ("provider_id", ASCENDING)]
        )
        return [d async for d in cursor]

    async def active_for_channel(
        self, *, tenant_id: str, channel: str, environment: str = DEVELOPMENT
    ) -> list[Doc]:
        """An environment's active configs for a channel, preferred (lowest priority number)
        first.

        When a worker's config cache expires, every message in flight asks at once; identical
        concurrent look-ups share one read, issued after each of them arrived.
        """
        return await self._active.submit((tenant_id, environment, channel), None)

    async def _active_batch(
        self, key: tuple[str, str, str], callers: list[None]
    ) -> list[list[Doc]]:
        tenant_id, environment, channel = key
        query = {
            "tenant_id": tenant_id,
            **_in_environment(environment),
            "channel": channel,
            "active": True,
        }
        cursor = self.col.find(query).sort([("priority", ASCENDING), ("provider_id", ASCENDING)])
        docs = [d async for d in cursor]
        return [[dict(d) for d in docs] for _ in callers]
