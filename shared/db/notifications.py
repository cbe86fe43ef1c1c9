"""The `notifications` collection: one record per (request, recipient, channel)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow
from shared.domain import Status

_DUPLICATE_KEY = 11000

# What a replay clears: the outcome of the cycle that ended in the DLQ, and any claim on it.
_REPLAY_UNSET = (
    "enqueued_at",
    "completed_at",
    "dead_lettered_at",
    "failure_reason",
    "failure_detail",
    "lease_until",
    "worker",
    "next_attempt_at",
    "waiting_since",
)
_REPLAY_SET = ("status", "attempt_count", "queued_at", "replayed_at")


class NotificationsRepo(Repo):
    """Notification records and their forward-only status changes."""

    collection_name = "notifications"

    async def ensure_indexes(self) -> None:
        """Idempotency, status/time, recipient, transaction and provider-id look-ups."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("idempotency_key", ASCENDING)],
                    unique=True,
                    partialFilterExpression={"idempotency_key": {"$exists": True}},
                    name="tenant_idempotency_key",
                ),
                IndexModel([("tenant_id", 1), ("status", 1), ("created_at", 1)]),
                IndexModel([("tenant_id", 1), ("recipient", 1), ("created_at", 1)]),
                IndexModel([("tenant_id", 1), ("transaction_id", 1)]),
                IndexModel([("provider_message_id", 1)]),
                # The maintenance sweep looks across tenants at the few records not yet final:
                # the one index here that does not start with tenant_id.
                IndexModel([("status", 1), ("updated_at", 1)], name="maintenance_sweep"),
            ]
        )

    async def insert(self, doc: Doc) -> tuple[Doc, bool]:
        """Insert a record; on an idempotency-key clash return the existing one instead."""
        try:
            await self.col.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            existing = await self.col.find_one(
                {"tenant_id": doc["tenant_id"], "idempotency_key": doc["idempotency_key"]}
            )
            if existing is None:  # the first writer's record vanished: surface the clash
                raise
            return existing, False

    async def insert_many(self, docs: list[Doc]) -> list[Doc]:
        """Insert in one batch; a record whose idempotency key exists comes back as the old one."""
        if not docs:
            return []
        try:
            await self.col.insert_many(docs, ordered=False)
            return docs
        except BulkWriteError as exc:
            clashes = [
                e["index"]
                for e in exc.details.get("writeErrors", [])
                if e["code"] == _DUPLICATE_KEY
            ]
            if len(clashes) != len(exc.details.get("writeErrors", [])):
                raise
        keys = [docs[i]["idempotency_key"] for i in clashes]
        tenant = docs[0]["tenant_id"]
        found = {
            d["idempotency_key"]: d
            async for d in self.col.find({"tenant_id": tenant, "idempotency_key": {"$in": keys}})
        }
        result = list(docs)
        for i in clashes:
            result[i] = found.get(docs[i]["idempotency_key"], docs[i])
        return result

    async def get(self, *, tenant_id: str, notification_id: str) -> Doc | None:
        """One record of this tenant."""
        return await self.col.find_one({"_id": notification_id, "tenant_id": tenant_id})

    async def find_by_transaction(self, *, tenant_id: str, transaction_id: str) -> list[Doc]:
        """Every record of one transaction (one for a send, one per recipient for a bulk)."""
        cursor = self.col.find({"tenant_id": tenant_id, "transaction_id": transaction_id})
        return [d async for d in cursor.sort("_id", ASCENDING)]

    async def mark_enqueued(self, *, tenant_id: str, notification_ids: list[str]) -> None:
        """Record that the publish of these records was confirmed by the broker."""
        now = utcnow()
        await self.col.update_many(
            {"tenant_id": tenant_id, "_id": {"$in": notification_ids}},
            {"$set": {"enqueued_at": now}, "$unset": {"sweep_until": ""}},
        )

    async def discard_unpublished(self, *, tenant_id: str, notification_ids: list[str]) -> int:
        """Delete records whose publish failed and that no worker has touched.

        The caller answers 503, so the request did not happen: a retry (with the same
        `request_id`) stores and sends it afresh, and the sweep never sends it behind the
        caller's back. A record a worker already claimed (the publish got through after all)
        is left alone.
        """
        result = await self.col.delete_many(
            {
                "tenant_id": tenant_id,
                "_id": {"$in": notification_ids},
                "status": Status.QUEUED.value,
                "enqueued_at": {"$exists": False},
                "attempts": {"$size": 0},
            }
        )
        return result.deleted_count

    async def claim(
        self, *, tenant_id: str, notification_id: str, worker: str, lease_s: int
    ) -> bool:
        """QUEUED or due RETRYING → PROCESSING (or take over an expired lease); True if won.

        A RETRYING record is claimable only once `next_attempt_at` has come, so no attempt
        goes out before a provider's `Retry-After`, whatever message arrives early.
        `update_one` with the expected state in the filter is as atomic as
        `find_one_and_update`, and ~14x faster on the embedded server (measured: 713 vs
        52 ops/s), so the record is read separately.
        """
        now = utcnow()
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "$or": [
                    {"status": Status.QUEUED.value},
                    {"status": Status.RETRYING.value, "next_attempt_at": {"$lte": now}},
                    {"status": Status.PROCESSING.value, "lease_until": {"$lt": now}},
                ],
            },
            {
                "$set": {
                    "status": Status.PROCESSING.value,
                    "processing_at": now,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "worker": worker,
                    "updated_at": now,
                }
            },
        )
        return result.modified_count == 1

    async def release(self, *, tenant_id: str, notification_id: str, worker: str) -> bool:
        """PROCESSING → QUEUED, for a message this worker will let the broker redeliver."""
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": Status.PROCESSING.value,
                "worker": worker,
            },
            {
                "$set": {"status": Status.QUEUED.value, "updated_at": utcnow()},
                "$unset": {"lease_until": ""},
            },
        )
        return result.modified_count == 1

    async def retry_later(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        worker: str,
        next_attempt_at: datetime,
        attempts: list[dict[str, Any]],
        attempt_count: int,
        fields: dict[str, Any],
    ) -> bool:
        """PROCESSING → RETRYING until `next_attempt_at`, appending what was attempted.

        `attempts` may be empty: a message that waited for an open circuit made no attempt.
        """
        now = utcnow()
        update: dict[str, Any] = {
            "$set": {
                "status": Status.RETRYING.value,
                "next_attempt_at": next_attempt_at,
                "attempt_count": attempt_count,
                "updated_at": now,
                **fields,
            },
            "$unset": {"lease_until": ""},
        }
        if attempts:
            update["$push"] = {"attempts": {"$each": attempts}}
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": Status.PROCESSING.value,
                "worker": worker,
            },
            update,
        )
        return result.modified_count == 1

    async def finish(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        worker: str,
        status: Status,
        attempts: list[dict[str, Any]],
        fields: dict[str, Any] | None = None,
    ) -> bool:
        """PROCESSING → a final status, appending the attempts; False if the claim was lost."""
        now = utcnow()
        update: dict[str, Any] = {
            "status": status.value,
            "updated_at": now,
            "completed_at": now,
            **(fields or {}),
        }
        if status is Status.DELIVERED:
            update["delivered_at"] = now
        change: dict[str, Any] = {
            "$set": update,
            "$unset": {"lease_until": "", "next_attempt_at": ""},
        }
        if attempts:
            change["$push"] = {"attempts": {"$each": attempts}}
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": Status.PROCESSING.value,
                "worker": worker,
            },
            change,
        )
        return result.modified_count == 1

    # --- maintenance (several copies may run: every take is a conditional update) ----------

    async def take_overdue(
        self, *, query: dict[str, Any], change: dict[str, Any], limit: int
    ) -> list[Doc]:
        """Records matching `query` (any tenant), each taken by a conditional update.

        `query` must stop matching once `change` is applied, so two sweepers never take the
        same record: the one whose update modifies it owns it.
        """
        taken: list[Doc] = []
        cursor = self.col.find(query, projection={"_id": 1, "tenant_id": 1}).limit(limit)
        candidates = [d async for d in cursor]
        for candidate in candidates:
            result = await self.col.update_one({**query, "_id": candidate["_id"]}, change)
            if result.modified_count == 1:
                doc = await self.col.find_one({"_id": candidate["_id"]})
                if doc is not None:
                    taken.append(doc)
        return taken

    # --- dead-letter replay (shared/dlq) ----------------------------------------------------

    async def get_many(self, *, tenant_id: str, notification_ids: list[str]) -> dict[str, Doc]:
        """Several records of one tenant, by id."""
        cursor = self.col.find({"tenant_id": tenant_id, "_id": {"$in": notification_ids}})
        return {d["_id"]: d async for d in cursor}

    async def requeue_dead_lettered(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        dead_lettered_at: datetime,
        replayed_at: datetime,
    ) -> bool:
        """FAILED / RATE_LIMITED and dead-lettered → QUEUED for a replay; False if it moved on.

        The filter names the dead-lettering being replayed (`dead_lettered_at`), so a second
        copy of the same DLQ message, or a replay racing another, changes nothing.
        """
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": {"$in": [Status.FAILED.value, Status.RATE_LIMITED.value]},
                "dead_lettered_at": dead_lettered_at,
            },
            {
                "$set": {
                    "status": Status.QUEUED.value,
                    "attempt_count": 0,
                    "queued_at": replayed_at,
                    "updated_at": replayed_at,
                    "replayed_at": replayed_at,
                },
                "$inc": {"replays": 1},
                "$unset": {name: "" for name in _REPLAY_UNSET},
            },
        )
        return result.modified_count == 1

    async def restore_dead_lettered(
        self, *, tenant_id: str, notification_id: str, previous: Doc, replayed_at: datetime
    ) -> bool:
        """Undo `requeue_dead_lettered` when the replay was not published; False if taken.

        Only a record still QUEUED by this very replay and never confirmed as enqueued is put
        back, so a worker that already claimed it keeps it.
        """
        restore: Doc = {"updated_at": utcnow()}
        clear: Doc = {}
        for name in (*_REPLAY_UNSET, *_REPLAY_SET):
            if name in previous:
                restore[name] = previous[name]
            else:
                clear[name] = ""
        change: Doc = {"$set": restore, "$inc": {"replays": -1}}
        if clear:
            change["$unset"] = clear
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": Status.QUEUED.value,
                "replayed_at": replayed_at,
                "enqueued_at": {"$exists": False},
            },
            change,
        )
        return result.modified_count == 1
