"""The `templates` collection: versioned message templates per environment, in locale variants.

A template code has versions; each version is one locale variant (or the variant without a
locale). Edits happen in development, where every version is a pending change
(`shared.db.versioned`); production receives exact copies by promotion.

Templates stored before environments existed carry `environment: production` (the single
environment of that time) and stay there untouched: production keys render them as before,
development keys do not see them. New development versions are numbered above them, so a
promotion never collides with one.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, utcnow
from shared.db.batching import Coalescer
from shared.db.versioned import DEVELOPMENT, PRODUCTION, VersionedRepo
from shared.locales import locales_of, pick_variant

_VERSION_CACHE_SIZE = 1024

# (tenant, environment, code, subscriber locale, tenant default locale)
_LatestKey = tuple[str, str, str, str | None, str | None]


class TemplatesRepo(VersionedRepo):
    """Every call to `create_version` adds a version; old versions stay readable."""

    collection_name = "templates"
    entity_type = "template"
    entity_field = "template_code"
    key_field = "template_code"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._versions: dict[tuple[str, str, str, int], Doc] = {}
        self._latest: Coalescer[_LatestKey, None, Doc | None] = Coalescer(self._latest_batch)

    async def ensure_indexes(self) -> None:
        """Unique version per (tenant, environment, code); pending changes."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("environment", 1), ("template_code", 1), ("version", 1)],
                    unique=True,
                    name="tenant_env_code_version",
                ),
                *self.change_indexes(),
            ]
        )

    def _scope(self, tenant_id: str, environment: str, template_code: str) -> Doc:
        return {"tenant_id": tenant_id, "environment": environment, "template_code": template_code}

    async def create_version(
        self,
        *,
        tenant_id: str,
        template_code: str,
        fields: dict[str, Any],
        changed_by: str | None,
    ) -> Doc:
        """Store the next version in development, as a pending change; concurrent creators
        each get their own number."""
        for _ in range(20):
            newest = [
                await self.newest(self._scope(tenant_id, env, template_code))
                for env in (DEVELOPMENT, PRODUCTION)
            ]
            top = max((d["version"] for d in newest if d is not None), default=0)
            action = "update" if top else "create"
            doc: Doc = {
                **self._scope(tenant_id, DEVELOPMENT, template_code),
                "version": top + 1,
                **fields,
                "created_at": utcnow(),
                **self.change_fields(action=action, changed_by=changed_by),
            }
            try:
                await self.col.insert_one(doc)
                return doc
            except DuplicateKeyError:
                continue
        raise RuntimeError(f"could not allocate a version for template {template_code}")

    async def get(
        self,
        *,
        tenant_id: str,
        environment: str,
        template_code: str,
        version: int | None = None,
    ) -> Doc | None:
        """A given version, or the latest one."""
        query = self._scope(tenant_id, environment, template_code)
        if version is None:
            return await self.newest(query)
        # A stored version never changes (every create is a new version, nothing deletes one),
        # so the worker need not read it again for every message that names it.
        key = (tenant_id, environment, template_code, version)
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
        self,
        *,
        tenant_id: str,
        environment: str,
        template_code: str,
        locale: str | None,
        default_locale: str | None = None,
    ) -> Doc | None:
        """The newest version of the variant the subscriber's locale falls back to
        (`shared.locales.pick_variant`): locale, language, tenant default, no locale, any.

        Every seed-003 request asks this; identical concurrent look-ups share one read, which
        is issued after each of them arrived (so a version created before a request is seen).
        """
        key = (tenant_id, environment, template_code, locale, default_locale)
        return await self._latest.submit(key, None)

    async def _latest_batch(self, key: _LatestKey, callers: list[None]) -> list[Doc | None]:
        tenant_id, environment, template_code, locale, default_locale = key
        # One read of every version of the code (a filter on the index's prefix): the variant
        # is picked here rather than by a query per fallback step.
        scope = self._scope(tenant_id, environment, template_code)
        versions = [d async for d in self.col.find(scope)]
        found = pick_variant(versions, locale=locale, default_locale=default_locale)
        return [None if found is None else dict(found) for _ in callers]

    async def list_latest(self, *, tenant_id: str, environment: str) -> list[tuple[Doc, list[str]]]:
        """The latest version of every template code, with the locales it has variants in."""
        by_code: dict[str, list[Doc]] = {}
        async for doc in self.col.find({"tenant_id": tenant_id, "environment": environment}):
            by_code.setdefault(doc["template_code"], []).append(doc)
        return [
            (max(docs, key=lambda d: int(d["version"])), locales_of(docs))
            for _, docs in sorted(by_code.items())
        ]
