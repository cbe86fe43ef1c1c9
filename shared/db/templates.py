"""The `templates` collection: versioned message templates per environment."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer

_VERSION_CACHE_SIZE = 1024
ENVIRONMENT = "production"  # promotion between environments comes with workflows


class TemplatesRepo(Repo):
    """Every call to `create_version` adds a version; old versions stay readable."""

    collection_name = "templates"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._versions: dict[tuple[str, str, int], Doc] = {}
        self._latest: Coalescer[tuple[str, str, str | None], None, Doc | None] = Coalescer(
            self._latest_batch
        )

    async def ensure_indexes(self) -> None:
        """Unique version per (tenant, environment, code)."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("environment", 1), ("template_code", 1), ("version", 1)],
                    unique=True,
                    name="tenant_env_code_version",
                )
            ]
        )

    async def create_version(
        self, *, tenant_id: str, template_code: str, fields: dict[str, Any]
    ) -> Doc:
        """Store the next version; concurrent creators each get their own number."""
        for _ in range(20):
            latest = await self.col.find_one(
                {
                    "tenant_id": tenant_id,
                    "environment": ENVIRONMENT,
                    "template_code": template_code,
                },
                sort=[("version", DESCENDING)],
                projection={"version": 1},
            )
            doc: Doc = {
                "tenant_id": tenant_id,
                "environment": ENVIRONMENT,
                "template_code": template_code,
                "version": (latest["version"] if latest else 0) + 1,
                **fields,
                "created_at": utcnow(),
            }
            try:
                await self.col.insert_one(doc)
                return doc
            except DuplicateKeyError:
                continue
        raise RuntimeError(f"could not allocate a version for template {template_code}")

    async def get(
        self, *, tenant_id: str, template_code: str, version: int | None = None
    ) -> Doc | None:
        """A given version, or the latest one."""
        query: Doc = {
            "tenant_id": tenant_id,
            "environment": ENVIRONMENT,
            "template_code": template_code,
        }
        if version is None:
            return await self.col.find_one(query, sort=[("version", DESCENDING)])
        # A stored version never changes (every create is a new version, nothing deletes one),
        # so the worker need not read it again for every message that names it.
        key = (tenant_id, template_code, version)
        cached = self._versions.get(key)
        if cached is not None:
            return cached
        doc = await self.col.find_one({**query, "version": version})
        if doc is not None:
            if len(self._versions) >= _VERSION_CACHE_SIZE:
                self._versions.pop(next(iter(self._versions)))
            self._versions[key] = doc
        return doc

    async def latest_for_locale(
        self, *, tenant_id: str, template_code: str, locale: str | None
    ) -> Doc | None:
        """Newest version in `locale`, else newest without a locale, else newest of any.

        Every seed-003 request asks this; identical concurrent look-ups share one read, which
        is issued after each of them arrived (so a version created before a request is seen).
        """
        return await self._latest.submit((tenant_id, template_code, locale), None)

    async def _latest_batch(
        self, key: tuple[str, str, str | None], callers: list[None]
    ) -> list[Doc | None]:
        tenant_id, template_code, locale = key
        query: Doc = {
            "tenant_id": tenant_id,
            "environment": ENVIRONMENT,
            "template_code": template_code,
        }
        newest = [("version", DESCENDING)]
        found: Doc | None = None
        for wanted in dict.fromkeys((locale, None)):
            found = await self.col.find_one({**query, "locale": wanted}, sort=newest)
            if found is not None:
                break
        if found is None:
            found = await self.col.find_one(query, sort=newest)
        return [None if found is None else dict(found) for _ in callers]

    async def list_latest(self, *, tenant_id: str) -> list[Doc]:
        """The latest version of every template code."""
        pipeline: list[Doc] = [
            {"$match": {"tenant_id": tenant_id, "environment": ENVIRONMENT}},
            {"$sort": {"template_code": ASCENDING, "version": DESCENDING}},
            {"$group": {"_id": "$template_code", "doc": {"$first": "$$ROOT"}}},
            {"$sort": {"_id": ASCENDING}},
        ]
        return [row["doc"] async for row in await self.col.aggregate(pipeline)]
