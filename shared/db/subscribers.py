"""The `subscribers` collection: profiles, addresses and push devices."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer
from shared.errors import Conflict


class SubscribersRepo(Repo):
    """Subscribers, keyed by (tenant_id, subscriber_id)."""

    collection_name = "subscribers"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._reads: Coalescer[str, str, Doc | None] = Coalescer(self._get_batch)

    async def ensure_indexes(self) -> None:
        """One subscriber per id per tenant; look-up by device token."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("subscriber_id", ASCENDING)],
                    unique=True,
                    name="tenant_subscriber",
                ),
                IndexModel([("tenant_id", ASCENDING), ("devices.token", ASCENDING)]),
            ]
        )

    async def create(self, *, tenant_id: str, subscriber_id: str, profile: dict[str, Any]) -> Doc:
        """Create; a second create of the same id is a Conflict."""
        now = utcnow()
        doc: Doc = {
            "tenant_id": tenant_id,
            "subscriber_id": subscriber_id,
            **profile,
            "devices": [],
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"subscriber {subscriber_id} already exists") from None
        return doc

    async def get(self, *, tenant_id: str, subscriber_id: str) -> Doc | None:
        """One subscriber of this tenant.

        Concurrent look-ups of one tenant share one `$in` query (`shared.db.batching`); a
        look-up made after a write goes out after it, so it sees that write.
        """
        return await self._reads.submit(tenant_id, subscriber_id)

    async def _get_batch(self, tenant_id: str, subscriber_ids: list[str]) -> list[Doc | None]:
        if len(subscriber_ids) == 1:
            return [
                await self.col.find_one(
                    {"tenant_id": tenant_id, "subscriber_id": subscriber_ids[0]}
                )
            ]
        found = await self.get_many(
            tenant_id=tenant_id, subscriber_ids=list(dict.fromkeys(subscriber_ids))
        )
        # A copy each: two callers in one batch must not share one mutable document.
        return [dict(found[i]) if i in found else None for i in subscriber_ids]

    async def get_many(self, *, tenant_id: str, subscriber_ids: list[str]) -> dict[str, Doc]:
        """Several subscribers in one query, by id."""
        cursor = self.col.find({"tenant_id": tenant_id, "subscriber_id": {"$in": subscriber_ids}})
        return {d["subscriber_id"]: d async for d in cursor}

    async def update_profile(
        self, *, tenant_id: str, subscriber_id: str, profile: dict[str, Any]
    ) -> Doc | None:
        """Set the given profile fields; None if there is no such subscriber."""
        return await self.col.find_one_and_update(
            {"tenant_id": tenant_id, "subscriber_id": subscriber_id},
            {"$set": {**profile, "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, *, tenant_id: str, subscriber_id: str) -> bool:
        """Delete; False if there was none."""
        result = await self.col.delete_one({"tenant_id": tenant_id, "subscriber_id": subscriber_id})
        return result.deleted_count == 1

    async def list_page(
        self, *, tenant_id: str, page: int, page_size: int
    ) -> tuple[list[Doc], int]:
        """A page in creation order and the tenant's total."""
        cursor = (
            self.col.find({"tenant_id": tenant_id})
            .sort("_id", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [d async for d in cursor]
        total = await self.col.count_documents({"tenant_id": tenant_id})
        return items, total

    async def add_device(self, *, tenant_id: str, subscriber_id: str, device: Doc) -> bool:
        """Register a push token (replacing an earlier entry of the same token or device)."""
        # Two pulls, not one `$pull` with `$or`: SecantusDB rejects `$or` inside `$pull`.
        for match in ({"token": device["token"]}, {"device_id": device["device_id"]}):
            await self.col.update_one(
                {"tenant_id": tenant_id, "subscriber_id": subscriber_id},
                {"$pull": {"devices": match}},
            )
        result = await self.col.update_one(
            {"tenant_id": tenant_id, "subscriber_id": subscriber_id},
            {"$push": {"devices": device}, "$set": {"updated_at": utcnow()}},
        )
        return result.matched_count == 1

    async def remove_token(
        self, *, tenant_id: str, token: str, subscriber_id: str | None = None
    ) -> int:
        """Remove a push token (from one subscriber, or wherever it is); how many held it."""
        query: Doc = {"tenant_id": tenant_id, "devices.token": token}
        if subscriber_id is not None:
            query["subscriber_id"] = subscriber_id
        result = await self.col.update_many(
            query, {"$pull": {"devices": {"token": token}}, "$set": {"updated_at": utcnow()}}
        )
        return result.modified_count
