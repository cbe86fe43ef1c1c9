"""The `dead_letter_operations` collection: the audit trail of DLQ replays and purges."""

from __future__ import annotations

from pymongo import DESCENDING, IndexModel

from shared.db.base import Doc, Repo


class DeadLetterOperationsRepo(Repo):
    """One document per replay or purge (dry runs too, flagged), never updated afterwards.

    `tenant_id` is the tenant the operation was limited to; an operator's command that
    spanned every tenant stores null there.
    """

    collection_name = "dead_letter_operations"

    async def ensure_indexes(self) -> None:
        """A tenant's operations, newest first."""
        await self.col.create_indexes(
            [IndexModel([("tenant_id", 1), ("at", DESCENDING)], name="tenant_at")]
        )

    async def record(self, doc: Doc) -> None:
        """Store one operation."""
        await self.col.insert_one(doc)

    async def list_recent(
        self, *, tenant_id: str | None, limit: int, action: str | None = None
    ) -> list[Doc]:
        """Newest first: one tenant's operations, or (`tenant_id=None`) everyone's."""
        query: Doc = {} if tenant_id is None else {"tenant_id": tenant_id}
        if action is not None:
            query["action"] = action
        cursor = self.col.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [d async for d in cursor]
