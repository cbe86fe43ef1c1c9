"""The `tenant_settings` collection: per-tenant settings (today: the default locale)."""

from __future__ import annotations

import time

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow

_CACHE_S = 30.0  # a changed default reaches every process within this long
_CACHE_SIZE = 10_000


class TenantSettingsRepo(Repo):
    """One document per tenant; read through a short per-process cache."""

    collection_name = "tenant_settings"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._cache: dict[str, tuple[float, Doc]] = {}

    async def ensure_indexes(self) -> None:
        """One document per tenant."""
        await self.col.create_indexes([IndexModel([("tenant_id", 1)], unique=True, name="tenant")])

    async def get(self, *, tenant_id: str) -> Doc:
        """The tenant's settings (empty when none were set); cached for a few seconds, so a
        send does not pay a read for them."""
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        doc = await self.col.find_one({"tenant_id": tenant_id}) or {"tenant_id": tenant_id}
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[tenant_id] = (now + _CACHE_S, doc)
        return doc

    async def update(self, *, tenant_id: str, fields: Doc) -> Doc:
        """Set the given fields (None removes one); the settings after."""
        unset = {k: "" for k, v in fields.items() if v is None}
        update: Doc = {
            "$set": {**{k: v for k, v in fields.items() if v is not None}, "updated_at": utcnow()},
            "$setOnInsert": {"created_at": utcnow()},
        }
        if unset:
            update["$unset"] = unset
        doc: Doc | None = None
        for _ in range(2):  # two first writes race: the loser's upsert hits the unique index
            try:
                doc = await self.col.find_one_and_update(
                    {"tenant_id": tenant_id},
                    update,
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                continue
        assert doc is not None
        self._cache.pop(tenant_id, None)
        return doc
