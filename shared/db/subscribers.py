"""The `subscribers` collection: profiles, addresses and push devices."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer
from shared.errors import Conflict

# Where a channel's one address lives on the subscriber document (suppression marks match it).
ADDRESS_FIELDS = {"email": "email", "sms": "phone"}
# The chat addresses under `chat`, each served by one provider type.
CHAT_FIELDS = {
    "slack_webhook_url": "SLACK",
    "slack_channel_id": "SLACK",
    "discord_webhook_url": "DISCORD",
}


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
                # Marking an address suppressed finds its holders by address.
                IndexModel([("tenant_id", ASCENDING), ("email", ASCENDING)]),
                IndexModel([("tenant_id", ASCENDING), ("phone", ASCENDING)]),
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

    async def set_preference(
        self, *, tenant_id: str, subscriber_id: str, path: str, enabled: bool
    ) -> Doc | None:
        """Set one preference switch (`shared.preferences.switch_path`); the document after,
        or None if there is no such subscriber."""
        if not path.startswith("preferences."):
            raise ValueError(f"not a preference switch: {path}")
        return await self.col.find_one_and_update(
            {"tenant_id": tenant_id, "subscriber_id": subscriber_id},
            {"$set": {path: enabled, "updated_at": utcnow()}},
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

    async def mark_suppressed(
        self, *, tenant_id: str, channel: str, address: str, reason: str
    ) -> int:
        """Mark `address` suppressed on every subscriber holding it; how many hold it.

        The delivery worker reads the subscriber document for every notification anyway, so a
        mark here lets it refuse a suppressed address without another query.
        """
        query: Doc = {"tenant_id": tenant_id, ADDRESS_FIELDS[channel]: address}
        mark = {"channel": channel, "address": address, "reason": reason}
        # Pull any older mark of this address first: its reason may differ.
        await self.col.update_many(
            query, {"$pull": {"suppressed": {"channel": channel, "address": address}}}
        )
        result = await self.col.update_many(
            query, {"$push": {"suppressed": mark}, "$set": {"updated_at": utcnow()}}
        )
        return result.modified_count

    async def unmark_suppressed(self, *, tenant_id: str, channel: str, address: str) -> int:
        """Remove the suppression mark of `address` wherever it is; how many lost one."""
        result = await self.col.update_many(
            {"tenant_id": tenant_id, "suppressed.address": address},
            {"$pull": {"suppressed": {"channel": channel, "address": address}}},
        )
        return result.modified_count

    async def set_suppression_marks(
        self, *, tenant_id: str, subscriber_id: str, marks: list[Doc]
    ) -> None:
        """Replace a subscriber's marks (after its addresses changed)."""
        await self.col.update_one(
            {"tenant_id": tenant_id, "subscriber_id": subscriber_id},
            {"$set": {"suppressed": marks}},
        )

    async def remove_chat_address(
        self, *, tenant_id: str, subscriber_id: str, field: str, address: str | None = None
    ) -> bool:
        """Unset one chat address (only while it still is `address`, when given)."""
        if field not in CHAT_FIELDS:
            raise ValueError(f"unknown chat field {field}")
        path = f"chat.{field}"
        query: Doc = {"tenant_id": tenant_id, "subscriber_id": subscriber_id}
        query[path] = address if address is not None else {"$ne": None}
        result = await self.col.update_one(
            query, {"$unset": {path: ""}, "$set": {"updated_at": utcnow()}}
        )
        return result.modified_count == 1
