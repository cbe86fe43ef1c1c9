"""The `topics` and `topic_subscriptions` collections: topic keys, and one document per
(topic, subscriber).

A topic document has an internal `_id` (a new one each time a key is created), and its
subscriptions name that id, not the key: a key deleted and created again starts empty even
while the old subscriptions are still being removed.

Each subscription also carries `seq`, its place in the topic (numbers are reserved in blocks
on the topic document, `next_seq`, so they only grow: the order is subscription order). The
fan-out worker streams a topic by `seq` windows, `seq` in (cursor, cursor + batch], on the
index `(tenant_id, topic_id, seq)`. A window, not "the next 500 after the cursor": the embedded
SecantusDB reads every document a query matches before it sorts and limits (measured: the
first page of a 25,000-subscriber topic read them all, 1.1 s, and a 100,000 topic timed out),
so only a bounded range keeps a page's cost the page's, on `mongod` and on SecantusDB alike.
"""

from __future__ import annotations

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.errors import Conflict
from shared.ids import new_id

_DUPLICATE_KEY = 11000


class TopicsRepo(Repo):
    """Topic keys per tenant."""

    collection_name = "topics"

    async def ensure_indexes(self) -> None:
        """One topic per key per tenant."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("key", ASCENDING)], unique=True, name="tenant_key"
                )
            ]
        )

    async def create(self, *, tenant_id: str, key: str, name: str | None) -> Doc:
        """A new topic; Conflict if the key exists."""
        now = utcnow()
        doc: Doc = {
            "_id": new_id("top"),
            "tenant_id": tenant_id,
            "key": key,
            "name": name,
            "next_seq": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"topic {key} already exists") from None
        return doc

    async def get(self, *, tenant_id: str, key: str) -> Doc | None:
        """The topic of this key."""
        return await self.col.find_one({"tenant_id": tenant_id, "key": key})

    async def delete(self, *, tenant_id: str, key: str) -> Doc | None:
        """Remove the key; the topic that was deleted, or None."""
        return await self.col.find_one_and_delete({"tenant_id": tenant_id, "key": key})

    async def list_page(
        self, *, tenant_id: str, page: int, page_size: int
    ) -> tuple[list[Doc], int]:
        """A page in key order and the tenant's total."""
        cursor = (
            self.col.find({"tenant_id": tenant_id})
            .sort("key", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [d async for d in cursor]
        return items, await self.col.count_documents({"tenant_id": tenant_id})

    async def reserve_seq(self, *, tenant_id: str, topic_id: str, count: int) -> int | None:
        """Reserve `count` subscription numbers; the first (the block is first+1 .. first+count),
        or None when the topic is gone."""
        doc = await self.col.find_one_and_update(
            {"_id": topic_id, "tenant_id": tenant_id},
            {"$inc": {"next_seq": count}},
            projection={"next_seq": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else int(doc["next_seq"]) - count

    async def last_seq(self, *, tenant_id: str, topic_id: str) -> int | None:
        """The highest subscription number given out so far; None when the topic is gone."""
        doc = await self.col.find_one(
            {"_id": topic_id, "tenant_id": tenant_id}, projection={"next_seq": 1}
        )
        return None if doc is None else int(doc.get("next_seq", 0))

    async def exists_by_id(self, *, tenant_id: str, topic_id: str) -> bool:
        """True while the topic with this internal id has not been deleted."""
        return await self.col.find_one({"_id": topic_id, "tenant_id": tenant_id}) is not None


class TopicSubscriptionsRepo(Repo):
    """One document per (topic, subscriber); streamed in `_id` order."""

    collection_name = "topic_subscriptions"

    async def ensure_indexes(self) -> None:
        """Unique per (topic, subscriber); `_id` order within a topic; by subscriber."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("topic_id", 1), ("subscriber_id", 1)],
                    unique=True,
                    name="tenant_topic_subscriber",
                ),
                IndexModel([("tenant_id", 1), ("topic_id", 1), ("seq", 1)], name="topic_stream"),
                IndexModel([("tenant_id", 1), ("subscriber_id", 1)], name="tenant_subscriber"),
            ]
        )

    async def add(
        self, *, tenant_id: str, topic_id: str, first_seq: int, subscriber_ids: list[str]
    ) -> list[str]:
        """Subscribe these ids, numbered from `first_seq` + 1 (reserved with
        `TopicsRepo.reserve_seq`); the ones newly subscribed (the others already were)."""
        if not subscriber_ids:
            return []
        now = utcnow()
        docs = [
            {
                "_id": ObjectId(),
                "tenant_id": tenant_id,
                "topic_id": topic_id,
                "subscriber_id": s,
                "seq": first_seq + 1 + i,
                "created_at": now,
            }
            for i, s in enumerate(subscriber_ids)
        ]
        try:
            await self.col.insert_many(docs, ordered=False)
            return list(subscriber_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            clashed = {e["index"] for e in errors}
        return [s for i, s in enumerate(subscriber_ids) if i not in clashed]

    async def subscribed_among(
        self, *, tenant_id: str, topic_id: str, subscriber_ids: list[str]
    ) -> set[str]:
        """Which of these ids are subscribed."""
        cursor = self.col.find(
            {
                "tenant_id": tenant_id,
                "topic_id": topic_id,
                "subscriber_id": {"$in": subscriber_ids},
            },
            projection={"subscriber_id": 1},
        )
        return {d["subscriber_id"] async for d in cursor}

    async def remove(
        self, *, tenant_id: str, topic_id: str, subscriber_ids: list[str]
    ) -> list[str]:
        """Unsubscribe these ids; the ones that were subscribed."""
        present = await self.subscribed_among(
            tenant_id=tenant_id, topic_id=topic_id, subscriber_ids=subscriber_ids
        )
        if present:
            await self.col.delete_many(
                {
                    "tenant_id": tenant_id,
                    "topic_id": topic_id,
                    "subscriber_id": {"$in": sorted(present)},
                }
            )
        return [s for s in subscriber_ids if s in present]

    async def is_subscribed(self, *, tenant_id: str, topic_id: str, subscriber_id: str) -> bool:
        """One subscription's existence."""
        found = await self.col.find_one(
            {"tenant_id": tenant_id, "topic_id": topic_id, "subscriber_id": subscriber_id},
            projection={"_id": 1},
        )
        return found is not None

    async def list_page(
        self, *, tenant_id: str, topic_id: str, page: int, page_size: int
    ) -> tuple[list[Doc], int]:
        """A page in subscription order and the topic's total."""
        query = {"tenant_id": tenant_id, "topic_id": topic_id}
        cursor = (
            self.col.find(query)
            .sort("seq", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [d async for d in cursor]
        return items, await self.col.count_documents(query)

    async def window(self, *, tenant_id: str, topic_id: str, after: int, span: int) -> list[Doc]:
        """The subscriptions numbered `after` + 1 .. `after` + `span` (fewer where some were
        removed), only `seq` and `subscriber_id`, so a page costs little memory."""
        cursor = self.col.find(
            {
                "tenant_id": tenant_id,
                "topic_id": topic_id,
                "seq": {"$gt": after, "$lte": after + span},
            },
            projection={"_id": 0, "seq": 1, "subscriber_id": 1},
        )
        return sorted([d async for d in cursor], key=lambda d: int(d["seq"]))

    async def count(self, *, tenant_id: str, topic_id: str) -> int:
        """How many subscribe to the topic."""
        return await self.col.count_documents({"tenant_id": tenant_id, "topic_id": topic_id})

    async def delete_topic(self, *, tenant_id: str, topic_id: str) -> int:
        """Remove every subscription of a topic; how many."""
        result = await self.col.delete_many({"tenant_id": tenant_id, "topic_id": topic_id})
        return result.deleted_count

    async def remove_subscriber(self, *, tenant_id: str, subscriber_id: str) -> int:
        """Remove a deleted subscriber from every topic; how many subscriptions."""
        result = await self.col.delete_many(
            {"tenant_id": tenant_id, "subscriber_id": subscriber_id}
        )
        return result.deleted_count
