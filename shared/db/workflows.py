"""The `workflows` collection: immutable workflow versions per (tenant, environment).

Each create, update and delete stores a new version (a delete stores a version marked
`deleted`), so every version a notification was made from stays readable and promotion is a
copy of one version (`shared.db.versioned`). A workflow's current state in an environment is
its highest version there. Its `key` is derived from the name once, at creation, and never
changes (triggers name it); it is unique per tenant and environment, enforced by a unique
index on (key, version): every workflow has a version 1.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, utcnow
from shared.db.versioned import DEVELOPMENT, VersionedRepo
from shared.ids import new_id

_MAX_KEY_SUFFIX = 1000


class VersionTaken(Exception):
    """Another request stored the same version first; read the workflow again."""


class WorkflowsRepo(VersionedRepo):
    """Workflow versions; edits in development, copies in production."""

    collection_name = "workflows"
    entity_type = "workflow"
    entity_field = "workflow_id"
    key_field = "key"

    async def ensure_indexes(self) -> None:
        """Unique version per workflow, unique key, pending changes."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("environment", 1), ("workflow_id", 1), ("version", 1)],
                    unique=True,
                    name="tenant_env_workflow_version",
                ),
                IndexModel(
                    [("tenant_id", 1), ("environment", 1), ("key", 1), ("version", 1)],
                    unique=True,
                    name="tenant_env_key_version",
                ),
                *self.change_indexes(),
            ]
        )

    async def create(
        self, *, tenant_id: str, key: str, definition: dict[str, Any], changed_by: str | None
    ) -> Doc:
        """Version 1 of a new workflow in development; `key`, or `key-2`, `key-3`… if taken."""
        workflow_id = new_id("wf")
        for n in range(1, _MAX_KEY_SUFFIX):
            doc: Doc = {
                "tenant_id": tenant_id,
                "environment": DEVELOPMENT,
                "workflow_id": workflow_id,
                "key": key if n == 1 else f"{key}-{n}",
                "version": 1,
                "deleted": False,
                **definition,
                "first_created_at": utcnow(),
                "created_at": utcnow(),
                **self.change_fields(action="create", changed_by=changed_by),
            }
            try:
                await self.col.insert_one(doc)
                return doc
            except DuplicateKeyError:
                continue  # a fresh workflow id cannot clash: the key is taken
        raise RuntimeError(f"no free key for workflow {key}")

    async def add_version(
        self,
        *,
        current: Doc,
        definition: dict[str, Any],
        deleted: bool,
        changed_by: str | None,
    ) -> Doc:
        """The version after `current` in development; VersionTaken if another got there."""
        doc: Doc = {
            "tenant_id": current["tenant_id"],
            "environment": DEVELOPMENT,
            "workflow_id": current["workflow_id"],
            "key": current["key"],
            "version": int(current["version"]) + 1,
            "deleted": deleted,
            **definition,
            "first_created_at": current.get("first_created_at", current["created_at"]),
            "created_at": utcnow(),
            **self.change_fields(action="delete" if deleted else "update", changed_by=changed_by),
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise VersionTaken(current["workflow_id"]) from None
        return doc

    async def current(
        self,
        *,
        tenant_id: str,
        environment: str,
        workflow_id: str | None = None,
        key: str | None = None,
    ) -> Doc | None:
        """The highest version of a workflow named by id or by key (deleted ones included)."""
        query: Doc = {"tenant_id": tenant_id, "environment": environment}
        if workflow_id is not None:
            query["workflow_id"] = workflow_id
        else:
            query["key"] = key
        return await self.newest(query)

    async def version(
        self, *, tenant_id: str, environment: str, workflow_id: str, version: int
    ) -> Doc | None:
        """One given version."""
        return await self.col.find_one(
            {
                "tenant_id": tenant_id,
                "environment": environment,
                "workflow_id": workflow_id,
                "version": version,
            }
        )

    async def list_current(
        self, *, tenant_id: str, environment: str, tags: list[str] | None
    ) -> list[Doc]:
        """The current version of every workflow not deleted, oldest workflow first;
        with `tags`, those whose current version has at least one of them."""
        newest: dict[str, Doc] = {}
        async for doc in self.col.find({"tenant_id": tenant_id, "environment": environment}):
            seen = newest.get(doc["workflow_id"])
            if seen is None or doc["version"] > seen["version"]:
                newest[doc["workflow_id"]] = doc
        wanted = set(tags or [])
        return [
            doc
            for _, doc in sorted(newest.items())
            if not doc.get("deleted") and (not wanted or wanted & set(doc.get("tags") or []))
        ]
