"""The `fanouts` collection: one document per topic send, so a fan-out survives any crash.

Its life: PENDING (stored by the API; `enqueued_at` once its message is confirmed) → RUNNING
(claimed by a fan-out worker under a lease, with a `cursor`: the last subscription `_id` whose
batch is done) → DONE. Every move is a conditional update naming the expected state (and, while
RUNNING, the claim's `worker` token), so a worker that lost its claim cannot write progress.
The fan-out sweep finds the stalled ones (publish never confirmed, lease expired, message
lost) under a short `sweep_until` lock and publishes their message again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow


class FanoutState(StrEnum):
    """Where a fan-out is."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"


ACTIVE = [FanoutState.PENDING.value, FanoutState.RUNNING.value]


class FanoutsRepo(Repo):
    """Fan-out documents, `_id` = the transaction id the API answered."""

    collection_name = "fanouts"

    async def ensure_indexes(self) -> None:
        """Idempotency per tenant; active fan-outs of a topic; the sweep's look-up."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("idempotency_key", ASCENDING)],
                    unique=True,
                    partialFilterExpression={"idempotency_key": {"$exists": True}},
                    name="tenant_idempotency_key",
                ),
                IndexModel([("tenant_id", 1), ("topic_id", 1), ("state", 1)], name="topic_state"),
                # The sweep looks across tenants at the few fan-outs not DONE.
                IndexModel([("state", 1), ("updated_at", 1)], name="fanout_sweep"),
            ]
        )

    async def insert(self, doc: Doc) -> tuple[Doc, bool]:
        """Store a new fan-out; on an idempotency-key clash the one stored first and False."""
        try:
            await self.col.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            existing = await self.col.find_one(
                {"tenant_id": doc["tenant_id"], "idempotency_key": doc["idempotency_key"]}
            )
            if existing is None:
                raise
            return existing, False

    async def get(self, *, tenant_id: str, fanout_id: str) -> Doc | None:
        """One fan-out of this tenant."""
        return await self.col.find_one({"_id": fanout_id, "tenant_id": tenant_id})

    async def mark_enqueued(self, *, tenant_id: str, fanout_id: str) -> None:
        """Its message was confirmed by the broker."""
        now = utcnow()
        await self.col.update_one(
            {"_id": fanout_id, "tenant_id": tenant_id},
            {"$set": {"enqueued_at": now, "updated_at": now}, "$unset": {"sweep_until": ""}},
        )

    async def discard_unpublished(self, *, tenant_id: str, fanout_id: str) -> bool:
        """Delete a fan-out whose publish failed and that no worker took (the API answers 503)."""
        result = await self.col.delete_one(
            {
                "_id": fanout_id,
                "tenant_id": tenant_id,
                "state": FanoutState.PENDING.value,
                "enqueued_at": {"$exists": False},
            }
        )
        return result.deleted_count == 1

    async def claim(
        self, *, tenant_id: str, fanout_id: str, worker: str, lease_s: float, take_over: bool
    ) -> Doc | None:
        """PENDING or RUNNING → RUNNING under `worker`'s lease; the document, or None.

        Without `take_over`, a live lease of another worker wins (None). With it (a redelivered
        message: the broker took it from a consumer that died or lost its channel) the lease
        is taken whatever it says; the worker that held it finds out at its next write.
        """
        now = utcnow()
        query: Doc = {"_id": fanout_id, "tenant_id": tenant_id, "state": {"$in": ACTIVE}}
        if not take_over:
            query["lease_until"] = {"$not": {"$gte": now}}
        return await self.col.find_one_and_update(
            query,
            {
                "$set": {
                    "state": FanoutState.RUNNING.value,
                    "worker": worker,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "updated_at": now,
                },
                "$inc": {"claims": 1},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def advance(
        self,
        *,
        tenant_id: str,
        fanout_id: str,
        worker: str,
        cursor: Any,
        recipients: int,
        excluded: int,
        lease_s: float,
    ) -> bool:
        """One batch done: move the cursor, add its counts, renew the lease; False if the
        claim was lost (another worker continues from the cursor it finds)."""
        now = utcnow()
        result = await self.col.update_one(
            {
                "_id": fanout_id,
                "tenant_id": tenant_id,
                "state": FanoutState.RUNNING.value,
                "worker": worker,
            },
            {
                "$set": {
                    "cursor": cursor,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "updated_at": now,
                },
                "$inc": {"recipients": recipients, "excluded": excluded, "batches": 1},
            },
        )
        return result.modified_count == 1

    async def finish(self, *, tenant_id: str, fanout_id: str, worker: str) -> bool:
        """RUNNING → DONE; False if the claim was lost."""
        now = utcnow()
        result = await self.col.update_one(
            {
                "_id": fanout_id,
                "tenant_id": tenant_id,
                "state": FanoutState.RUNNING.value,
                "worker": worker,
            },
            {
                "$set": {"state": FanoutState.DONE.value, "completed_at": now, "updated_at": now},
                "$unset": {"lease_until": "", "sweep_until": ""},
            },
        )
        return result.modified_count == 1

    async def release(self, *, tenant_id: str, fanout_id: str, worker: str) -> bool:
        """Give the lease up (shutdown): whoever gets the message next continues at once."""
        result = await self.col.update_one(
            {
                "_id": fanout_id,
                "tenant_id": tenant_id,
                "state": FanoutState.RUNNING.value,
                "worker": worker,
            },
            {"$unset": {"lease_until": ""}, "$set": {"updated_at": utcnow()}},
        )
        return result.modified_count == 1

    async def active_for_topic(self, *, tenant_id: str, topic_id: str) -> int:
        """How many fan-outs of this topic are not DONE."""
        return await self.col.count_documents(
            {"tenant_id": tenant_id, "topic_id": topic_id, "state": {"$in": ACTIVE}}
        )

    async def take_stalled(
        self,
        *,
        unpublished_before: datetime,
        expired_before: datetime,
        idle_before: datetime,
        lock_until: datetime,
        limit: int,
    ) -> list[Doc]:
        """Fan-outs whose message must be published again, each locked for this sweeper:

        - PENDING, never confirmed, stored before `unpublished_before` (the API died or the
          publish failed and the discard did too);
        - PENDING, confirmed, untouched since `idle_before` (its message was lost);
        - RUNNING with a lease that expired before `expired_before` (its worker died and its
          message is gone, or sits unacked on a half-dead connection).
        A second message is harmless: the claim lets one worker run it at a time.
        """
        now = utcnow()
        taken: list[Doc] = []
        cases: list[Doc] = [
            {
                "state": FanoutState.PENDING.value,
                "enqueued_at": {"$exists": False},
                "created_at": {"$lt": unpublished_before},
            },
            {
                "state": FanoutState.PENDING.value,
                "enqueued_at": {"$lt": idle_before},
                "updated_at": {"$lt": idle_before},
            },
            {"state": FanoutState.RUNNING.value, "lease_until": {"$lt": expired_before}},
        ]
        for case in cases:
            query = {**case, "sweep_until": {"$not": {"$gte": now}}}
            cursor = self.col.find(query, projection={"_id": 1}).limit(limit)
            for candidate in [d async for d in cursor]:
                doc = await self.col.find_one_and_update(
                    {**query, "_id": candidate["_id"]},
                    {"$set": {"sweep_until": lock_until, "updated_at": now}, "$inc": {"sweeps": 1}},
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    taken.append(doc)
        return taken
