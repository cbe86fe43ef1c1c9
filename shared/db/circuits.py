"""The `circuits` collection: circuits a worker process holds open, for the dashboard.

Circuits live in each worker's memory (`workers/circuit.py`); a worker writes here only when
one opens or closes, so the cost is per transition, never per notification. A document left
by a worker that died expires a day after its last change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import IndexModel

from shared.db.base import Doc, Repo, utcnow


class CircuitsRepo(Repo):
    """One document per (tenant, provider config, worker process) whose circuit is open."""

    collection_name = "circuits"

    async def ensure_indexes(self) -> None:
        """Look-up by tenant; expiry of stale documents."""
        await self.col.create_indexes(
            [
                IndexModel([("tenant_id", 1), ("provider", 1)]),
                IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_at"),
            ]
        )

    async def record_open(
        self, *, tenant_id: str, provider: str, provider_type: str, worker: str, retry_at: datetime
    ) -> None:
        """The circuit opened (or re-opened); a probe is let through from `retry_at`."""
        now = utcnow()
        await self.col.update_one(
            {"_id": f"{tenant_id}:{provider}:{worker}"},
            {
                "$set": {
                    "tenant_id": tenant_id,
                    "provider": provider,
                    "provider_type": provider_type,
                    "worker": worker,
                    "retry_at": retry_at,
                    "updated_at": now,
                    "expires_at": now + timedelta(days=1),
                },
                "$setOnInsert": {"opened_at": now},
            },
            upsert=True,
        )

    async def record_closed(self, *, tenant_id: str, provider: str, worker: str) -> None:
        """The circuit closed."""
        await self.col.delete_one({"_id": f"{tenant_id}:{provider}:{worker}"})

    async def open_for_tenant(self, *, tenant_id: str) -> list[Doc]:
        """The tenant's open circuits, one per (provider, worker)."""
        return [d async for d in self.col.find({"tenant_id": tenant_id}).sort("provider", 1)]
