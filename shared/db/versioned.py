"""What versioned, promotable collections (workflows, templates) share: pending changes.

Every edit in development stores a new, immutable version document, and that document *is*
the pending change: it carries `pending: True`, a `change_id`, the `change_action` and who
made it. One insert, so an edit and its pending change can never be separated by a crash.
Promotion inserts an exact copy of that version into production (unique per entity and
version, so promoting twice inserts once), then clears the flag. Production's current state
of an entity is its highest version there, so promoting changes in any order converges on
the same state: an older version promoted late never hides a newer one.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.domain import Environment
from shared.errors import Conflict
from shared.ids import new_id

DEVELOPMENT = Environment.DEVELOPMENT.value
PRODUCTION = Environment.PRODUCTION.value

# Fields that describe the development edit, not the version: never copied to production.
_CHANGE_FIELDS = ("_id", "pending", "change_id", "change_action", "changed_by")
_PROMOTION_FIELDS = ("promoted_at", "promoted_by")


class VersionedRepo(Repo):
    """A collection of immutable versions per (tenant, environment, entity)."""

    entity_type = ""  # "workflow", "template": how a change names what it changed
    entity_field = ""  # the field naming the entity: "workflow_id", "template_code"
    key_field = ""  # the field shown as the change's `key`

    def change_indexes(self) -> list[IndexModel]:
        """Pending changes by tenant, and one change by its id."""
        return [
            IndexModel([("tenant_id", ASCENDING), ("pending", ASCENDING)], name="tenant_pending"),
            IndexModel([("tenant_id", ASCENDING), ("change_id", ASCENDING)], name="tenant_change"),
        ]

    @staticmethod
    def change_fields(*, action: str, changed_by: str | None) -> Doc:
        """The fields that make a new development version a pending change."""
        return {
            "pending": True,
            "change_id": new_id("chg"),
            "change_action": action,
            "changed_by": changed_by,
        }

    async def pending_changes(self, *, tenant_id: str) -> list[Doc]:
        """Development versions not promoted yet, oldest first."""
        cursor = self.col.find({"tenant_id": tenant_id, "pending": True})
        docs = [d async for d in cursor]
        docs.sort(key=lambda d: (d["created_at"], d["change_id"]))
        return docs

    async def find_change(self, *, tenant_id: str, change_id: str) -> Doc | None:
        """The development version a change id names, promoted or not."""
        return await self.col.find_one({"tenant_id": tenant_id, "change_id": change_id})

    async def promote(self, *, change: Doc, promoted_by: str | None) -> bool:
        """Copy this exact version to production, then mark the change promoted.

        True if this call copied it; False if production already had it (promoted before,
        perhaps by a call that died before clearing the flag). Raises Conflict if production
        holds that entity and version from elsewhere (stored before environments existed).
        """
        now = utcnow()
        copy = {k: v for k, v in change.items() if k not in _CHANGE_FIELDS + _PROMOTION_FIELDS}
        copy.update(
            environment=PRODUCTION,
            promoted_from=change["change_id"],
            promoted_at=now,
            promoted_by=promoted_by,
        )
        try:
            await self.col.insert_one(copy)
            copied = True
        except DuplicateKeyError:
            existing = await self.col.find_one(
                {
                    "tenant_id": change["tenant_id"],
                    "environment": PRODUCTION,
                    self.entity_field: change[self.entity_field],
                    "version": change["version"],
                }
            )
            if existing is None or existing.get("promoted_from") != change["change_id"]:
                raise Conflict(
                    f"production already holds {self.entity_type} "
                    f"{change[self.key_field]} version {change['version']} from elsewhere "
                    "(stored before environments existed): edit it again to make a new version"
                ) from None
            copied = False
        await self.col.update_one(
            {"_id": change["_id"], "pending": True},
            {"$set": {"pending": False, "promoted_at": now, "promoted_by": promoted_by}},
        )
        return copied

    async def newest(self, query: Doc) -> Doc | None:
        """The highest version matching `query` (one entity in one environment)."""
        return await self.col.find_one(query, sort=[("version", DESCENDING)])
