"""The `inbox_messages` collection: in-app feed items, their seen/read flags and tombstones.

A deleted item stays as a tombstone (`deleted_at` set, flagged seen and read so no count
sees it) until a TTL index removes it a week later: a delivery redelivered after a crash
then finds the tombstone and does not bring the item back. Counts are answered from the
`(tenant, subscriber, seen, …)` and `(tenant, subscriber, read)` indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pymongo import IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer

TOMBSTONE_KEPT_S = 7 * 24 * 3600
_DUPLICATE_KEY = 11000


class InboxStatus(StrEnum):
    """The seed's mark statuses; an item's own status is READ, SEEN or UNSEEN."""

    SEEN = "SEEN"
    READ = "READ"
    UNSEEN = "UNSEEN"
    UNREAD = "UNREAD"


# What each mark writes, and (for mark-all) which items it changes: only those not yet so.
_FLAGS: dict[InboxStatus, dict[str, bool]] = {
    InboxStatus.SEEN: {"seen": True},
    InboxStatus.READ: {"seen": True, "read": True},
    InboxStatus.UNSEEN: {"seen": False, "read": False},
    InboxStatus.UNREAD: {"read": False},
}
_NOT_YET: dict[InboxStatus, Doc] = {
    InboxStatus.SEEN: {"seen": False},
    InboxStatus.READ: {"read": False},
    InboxStatus.UNSEEN: {"seen": True, "deleted_at": None},
    InboxStatus.UNREAD: {"read": True, "deleted_at": None},
}


def status_of(doc: Doc) -> str:
    """READ if read, else SEEN if seen, else UNSEEN."""
    if doc.get("read"):
        return InboxStatus.READ.value
    return InboxStatus.SEEN.value if doc.get("seen") else InboxStatus.UNSEEN.value


class Stored(StrEnum):
    """What a delivery found: a new item, the item of an earlier delivery, or a tombstone."""

    NEW = "new"
    EXISTING = "existing"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The item a delivery wrote (or found) and what it found."""

    message_id: str
    stored: Stored


class InboxRepo(Repo):
    """In-app messages; the in-app channel delivers by writing here."""

    collection_name = "inbox_messages"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        # The embedded server pays per command: concurrent deliveries go out as one batch.
        self._deliveries: Coalescer[str, Doc, Delivered] = Coalescer(self._deliver_batch)

    async def ensure_indexes(self) -> None:
        """Feed order (per feed and across feeds), counts, one item per notification."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("subscriber_id", 1), ("feed_id", 1), ("created_at", -1)]
                ),
                IndexModel([("tenant_id", 1), ("subscriber_id", 1), ("seen", 1), ("read", 1)]),
                IndexModel(
                    [("tenant_id", 1), ("notification_id", 1)],
                    unique=True,
                    name="tenant_notification",
                ),
                IndexModel(
                    [("tenant_id", 1), ("subscriber_id", 1), ("created_at", -1)],
                    name="subscriber_feed_all",
                ),
                IndexModel(
                    [("tenant_id", 1), ("subscriber_id", 1), ("read", 1)],
                    name="subscriber_unread",
                ),
                # Tombstones only (live items have no deleted_at): the one index not led by
                # tenant_id, as a TTL index must have a single field.
                IndexModel(
                    [("deleted_at", 1)],
                    expireAfterSeconds=TOMBSTONE_KEPT_S,
                    name="tombstones_ttl",
                ),
            ]
        )

    # --- the in-app channel's write ----------------------------------------------------------

    async def deliver(self, doc: Doc) -> Delivered:
        """Insert the item once per notification; a redelivery finds the first (or its
        tombstone) and writes nothing."""
        return await self._deliveries.submit(str(doc["tenant_id"]), doc)

    async def _deliver_batch(self, tenant_id: str, docs: list[Doc]) -> list[Delivered]:
        ops = [
            UpdateOne(
                {"tenant_id": tenant_id, "notification_id": d["notification_id"]},
                {"$setOnInsert": d},
                upsert=True,
            )
            for d in docs
        ]
        upserted: set[int] = set()
        try:
            result = await self.col.bulk_write(ops, ordered=False)
            upserted = set(result.upserted_ids or {})
        except BulkWriteError as exc:
            # Two deliveries of one notification racing: the loser finds the winner's item.
            others = [e for e in exc.details["writeErrors"] if e.get("code") != _DUPLICATE_KEY]
            if others:
                raise
            upserted = {int(u["index"]) for u in exc.details.get("upserted", [])}
        found: dict[str, Doc] = {}
        missing = [d["notification_id"] for i, d in enumerate(docs) if i not in upserted]
        if missing:
            cursor = self.col.find(
                {"tenant_id": tenant_id, "notification_id": {"$in": missing}},
                {"_id": 1, "notification_id": 1, "deleted_at": 1},
            )
            found = {d["notification_id"]: d async for d in cursor}
        out: list[Delivered] = []
        for i, d in enumerate(docs):
            if i in upserted:
                out.append(Delivered(message_id=str(d["_id"]), stored=Stored.NEW))
                continue
            first = found.get(d["notification_id"])
            if first is None:  # removed between the two commands (its tombstone expired)
                out.append(Delivered(message_id=str(d["_id"]), stored=Stored.DELETED))
            else:
                stored = Stored.DELETED if first.get("deleted_at") else Stored.EXISTING
                out.append(Delivered(message_id=str(first["_id"]), stored=stored))
        return out

    # --- a subscriber's reads ----------------------------------------------------------------

    async def page(
        self,
        *,
        tenant_id: str,
        subscriber_id: str,
        feed_ids: list[str] | None,
        categories: list[str] | None,
        skip: int,
        limit: int,
    ) -> list[Doc]:
        """Live items, newest first."""
        query: Doc = {"tenant_id": tenant_id, "subscriber_id": subscriber_id}
        if feed_ids:
            query["feed_id"] = {"$in": feed_ids}
        query["deleted_at"] = None
        if categories:
            query["category"] = {"$in": categories}
        cursor = self.col.find(query).sort([("created_at", -1), ("_id", -1)]).skip(skip)
        return [d async for d in cursor.limit(limit)]

    async def find_many(
        self, *, tenant_id: str, subscriber_id: str, message_ids: list[str]
    ) -> dict[str, Doc]:
        """These items (tombstones included) by id; another subscriber's never."""
        cursor = self.col.find(
            {"_id": {"$in": message_ids}, "tenant_id": tenant_id, "subscriber_id": subscriber_id}
        )
        return {str(d["_id"]): d async for d in cursor}

    def count_filters(self, *, tenant_id: str, subscriber_id: str) -> tuple[Doc, Doc]:
        """The unseen and the unread filters (for `explain`): each an index's prefix."""
        base = {"tenant_id": tenant_id, "subscriber_id": subscriber_id}
        return {**base, "seen": False}, {**base, "read": False}

    async def counts(self, *, tenant_id: str, subscriber_id: str) -> tuple[int, int]:
        """(unseen, unread), each counted on an index; tombstones are seen and read."""
        unseen, unread = self.count_filters(tenant_id=tenant_id, subscriber_id=subscriber_id)
        return await self.col.count_documents(unseen), await self.col.count_documents(unread)

    # --- a subscriber's changes --------------------------------------------------------------

    async def mark(
        self, *, tenant_id: str, subscriber_id: str, message_id: str, status: InboxStatus
    ) -> tuple[Doc, bool] | None:
        """The item after the mark and whether it changed; None if it is not theirs."""
        flags = _FLAGS[status]
        before = await self.col.find_one_and_update(
            {
                "_id": message_id,
                "tenant_id": tenant_id,
                "subscriber_id": subscriber_id,
                "deleted_at": None,
            },
            {"$set": {**flags, "updated_at": utcnow()}},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            return None
        changed = any(bool(before.get(k)) != v for k, v in flags.items())
        return {**before, **flags}, changed

    async def mark_all(
        self,
        *,
        tenant_id: str,
        subscriber_id: str,
        status: InboxStatus,
        feed_ids: list[str] | None,
    ) -> int:
        """Mark every live item (of these feeds) not yet so; how many changed."""
        query: Doc = {"tenant_id": tenant_id, "subscriber_id": subscriber_id}
        if feed_ids:
            query["feed_id"] = {"$in": feed_ids}
        query.update(_NOT_YET[status])
        result = await self.col.update_many(
            query, {"$set": {**_FLAGS[status], "updated_at": utcnow()}}
        )
        return int(result.modified_count)

    async def delete(self, *, tenant_id: str, subscriber_id: str, message_id: str) -> bool:
        """Turn the item into a tombstone (again: idempotent); False if it is not theirs."""
        now = utcnow()
        result = await self.col.update_one(
            {"_id": message_id, "tenant_id": tenant_id, "subscriber_id": subscriber_id},
            {
                "$min": {"deleted_at": now},  # the first deletion's time stays
                "$set": {"updated_at": now, "seen": True, "read": True},
            },
        )
        return bool(result.matched_count)

    async def list_for(self, *, tenant_id: str, subscriber_id: str, limit: int = 50) -> list[Doc]:
        """Newest first, tombstones included (tests and tools)."""
        cursor = (
            self.col.find({"tenant_id": tenant_id, "subscriber_id": subscriber_id})
            .sort("created_at", -1)
            .limit(limit)
        )
        return [d async for d in cursor]

    async def was_read(self, *, tenant_id: str, notification_id: str) -> bool:
        """True if the in-app item a notification delivered has been read (a workflow's
        escalation steps ask); an item never delivered counts as unread."""
        doc = await self.col.find_one(
            {"tenant_id": tenant_id, "notification_id": notification_id}, {"read": 1}
        )
        return bool(doc and doc.get("read"))
