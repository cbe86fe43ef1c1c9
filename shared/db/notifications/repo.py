"""The `notifications` collection: storing records, claiming them, and writing verdicts.

Concurrent single-record calls are coalesced into one command (`shared.db.batching`): the
embedded server pays per command, so this is most of the write cost. Each caller still gets
its own answer, after its own record is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from shared.db.base import Doc, Repo, utcnow
from shared.db.batching import Coalescer
from shared.db.notifications.documents import (
    INITIAL,
    by_id,
    claimable,
    from_document,
    held_by,
    to_document,
    values,
)
from shared.domain import Status
from shared.records import Attempt, DeliveryChange, NotificationRecord

_DUPLICATE_KEY = 11000


class NotificationStore(Repo):
    """Records in, records out, and the forward-only moves of one delivery."""

    collection_name = "notifications"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._inserts: Coalescer[None, Doc, tuple[Doc, bool]] = Coalescer(self._insert_batch)
        self._enqueued: Coalescer[str, list[str], None] = Coalescer(self._mark_enqueued_batch)
        self._finishes: Coalescer[None, _Finish, bool] = Coalescer(self._finish_batch)
        self._claims: Coalescer[tuple[str, str, int], str, Doc | None] = Coalescer(
            self._claim_batch
        )

    async def ensure_indexes(self) -> None:
        """Idempotency, status/time, recipient, transaction, time and provider-id look-ups."""
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
                # A transaction's records, and a page of them by result (a topic send's
                # recipients: shared.db.notifications.transactions).
                IndexModel(
                    [("tenant_id", 1), ("transaction_id", 1), ("status", 1)],
                    name="tenant_transaction_status",
                ),
                # The activity feed and the statistics walk a tenant's records by time,
                # channel by channel (shared.db.notifications.activity).
                IndexModel(
                    [("tenant_id", 1), ("channel", 1), ("created_at", 1)],
                    name="tenant_channel_created",
                ),
                IndexModel([("provider_message_id", 1)]),
                # The maintenance sweep looks across tenants at the few records not yet final:
                # the one index here that does not start with tenant_id.
                IndexModel([("status", 1), ("updated_at", 1)], name="maintenance_sweep"),
            ]
        )

    # --- storing -----------------------------------------------------------------------------

    async def insert(self, record: NotificationRecord) -> tuple[NotificationRecord, bool]:
        """Store a record; on an idempotency-key clash, the one stored first and False."""
        doc, created = await self._inserts.submit(None, to_document(record))
        return (record if created else from_document(doc)), created

    async def _insert_batch(
        self, _: None, docs: list[Doc]
    ) -> list[tuple[Doc, bool] | BaseException]:
        try:
            await self.col.insert_many(docs, ordered=False)
            return [(doc, True) for doc in docs]
        except BulkWriteError as exc:
            errors = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        outcomes: list[tuple[Doc, bool] | BaseException] = []
        for index, doc in enumerate(docs):
            error = errors.get(index)
            if error is None:
                outcomes.append((doc, True))
                continue
            if error.get("code") != _DUPLICATE_KEY or "idempotency_key" not in doc:
                outcomes.append(WriteError(error.get("errmsg"), error.get("code"), error))
                continue
            # An earlier request (possibly in this very batch) holds the key: answer with it.
            existing = await self.col.find_one(
                {"tenant_id": doc["tenant_id"], "idempotency_key": doc["idempotency_key"]}
            )
            if existing is None:  # the first writer's record vanished: surface the clash
                outcomes.append(DuplicateKeyError(error.get("errmsg"), _DUPLICATE_KEY, error))
            else:
                outcomes.append((existing, False))
        return outcomes

    async def insert_many(self, records: list[NotificationRecord]) -> list[NotificationRecord]:
        """Store a batch in one write; a record whose idempotency key exists comes back as the
        one stored first."""
        if not records:
            return []
        try:
            await self.col.insert_many([to_document(r) for r in records], ordered=False)
            return list(records)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            clashes = [e["index"] for e in errors if e["code"] == _DUPLICATE_KEY]
            if len(clashes) != len(errors):
                raise
        keys = [records[i].idempotency_key for i in clashes]
        found = {
            d["idempotency_key"]: from_document(d)
            async for d in self.col.find(
                {"tenant_id": records[0].tenant_id, "idempotency_key": {"$in": keys}}
            )
        }
        result = list(records)
        for i in clashes:
            result[i] = found.get(records[i].idempotency_key or "", records[i])
        return result

    async def mark_enqueued(self, *, tenant_id: str, notification_ids: list[str]) -> None:
        """The broker confirmed these records' messages; calls of one tenant share a command."""
        await self._enqueued.submit(tenant_id, notification_ids)

    async def _mark_enqueued_batch(
        self, tenant_id: str, id_lists: list[list[str]]
    ) -> list[BaseException | None]:
        await self.col.update_many(
            {"_id": {"$in": [i for ids in id_lists for i in ids]}, "tenant_id": tenant_id},
            {"$set": {"enqueued_at": utcnow()}, "$unset": {"sweep_until": ""}},
        )
        return [None] * len(id_lists)

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
                "status": {"$in": values(INITIAL)},
                "enqueued_at": {"$exists": False},
                "attempts": {"$size": 0},
            }
        )
        return result.deleted_count

    # --- reading -----------------------------------------------------------------------------

    async def get(self, *, tenant_id: str, notification_id: str) -> NotificationRecord | None:
        """One record of this tenant."""
        doc = await self.col.find_one(by_id(tenant_id, notification_id))
        return from_document(doc) if doc is not None else None

    async def get_by_idempotency_key(
        self, *, tenant_id: str, idempotency_key: str
    ) -> NotificationRecord | None:
        """The record stored under a client's idempotency key (seed 003's `request_id`)."""
        doc = await self.col.find_one({"tenant_id": tenant_id, "idempotency_key": idempotency_key})
        return from_document(doc) if doc is not None else None

    async def get_many(
        self, *, tenant_id: str, notification_ids: list[str]
    ) -> dict[str, NotificationRecord]:
        """Several records of one tenant, by id."""
        cursor = self.col.find({"_id": {"$in": notification_ids}, "tenant_id": tenant_id})
        return {d["_id"]: from_document(d) async for d in cursor}

    async def find_by_transaction(
        self, *, tenant_id: str, transaction_id: str
    ) -> list[NotificationRecord]:
        """Every record of one transaction (one for a send, one per recipient for a bulk)."""
        cursor = self.col.find({"tenant_id": tenant_id, "transaction_id": transaction_id})
        return [from_document(d) async for d in cursor.sort("_id", ASCENDING)]

    # --- one delivery ------------------------------------------------------------------------

    async def claim(
        self, *, tenant_id: str, notification_id: str, worker: str, lease_s: int
    ) -> bool:
        """QUEUED or due RETRYING → PROCESSING (or take over an expired lease); True if won.

        `update_one` with the expected state in the filter is as atomic as
        `find_one_and_update`, and ~14x faster on the embedded server (713 vs 52 ops/s).
        """
        now = utcnow()
        result = await self.col.update_one(
            {**by_id(tenant_id, notification_id), **claimable(now)},
            {"$set": _claim_fields(now, worker=worker, lease_s=lease_s)},
        )
        return result.modified_count == 1

    async def claim_and_get(
        self, *, tenant_id: str, notification_id: str, worker: str, lease_s: int
    ) -> NotificationRecord | None:
        """`claim`, then the claimed record; None if another worker holds it or it moved on.

        Concurrent claims of one worker go out together: one `update_many` that stamps a
        token unique to the batch, then one `find` of the records carrying that token, so a
        record is returned only to the caller whose batch won it (2 commands per batch
        instead of 2 per message). The same id twice in one batch is claimed once.
        """
        doc = await self._claims.submit((tenant_id, worker, lease_s), notification_id)
        return from_document(doc) if doc is not None else None

    async def _claim_batch(
        self, key: tuple[str, str, int], notification_ids: list[str]
    ) -> list[Doc | BaseException | None]:
        tenant_id, worker, lease_s = key
        now = utcnow()
        token = uuid.uuid4().hex
        unique = list(dict.fromkeys(notification_ids))
        await self.col.update_many(
            {"_id": {"$in": unique}, "tenant_id": tenant_id, **claimable(now)},
            {"$set": {**_claim_fields(now, worker=worker, lease_s=lease_s), "claim_token": token}},
        )
        won = {
            d["_id"]: d
            async for d in self.col.find(
                {"_id": {"$in": unique}, "tenant_id": tenant_id, "claim_token": token}
            )
        }
        return [won.pop(i, None) for i in notification_ids]

    async def release(self, *, tenant_id: str, notification_id: str, worker: str) -> bool:
        """PROCESSING → QUEUED, for a message this worker lets the broker deliver again."""
        result = await self.col.update_one(
            held_by(tenant_id, notification_id, worker),
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
        attempts: list[Attempt],
        change: DeliveryChange,
    ) -> bool:
        """PROCESSING → RETRYING until `next_attempt_at`, appending what was attempted.

        `attempts` may be empty: a message that waited for an open circuit made no attempt.
        """
        update: dict[str, Any] = {
            "$set": {
                **change.given(),
                "status": Status.RETRYING.value,
                "next_attempt_at": next_attempt_at,
                "updated_at": utcnow(),
            },
            "$unset": {"lease_until": ""},
        }
        if attempts:
            update["$push"] = {"attempts": {"$each": _documents(attempts)}}
        result = await self.col.update_one(held_by(tenant_id, notification_id, worker), update)
        return result.modified_count == 1

    async def defer(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        worker: str,
        deliver_at: datetime,
        change: DeliveryChange,
    ) -> bool:
        """PROCESSING → DELAYED until `deliver_at` (e.g. quiet hours), no attempt recorded.

        A DELAYED record is claimable once `deliver_at` has come, cancellable until then, and
        re-published by the maintenance sweep if its parked message is lost.
        """
        update: dict[str, Any] = {
            "$set": {
                **change.given(),
                "status": Status.DELAYED.value,
                "deliver_at": deliver_at,
                "updated_at": utcnow(),
            },
            "$unset": {"lease_until": "", "worker": ""},
        }
        result = await self.col.update_one(held_by(tenant_id, notification_id, worker), update)
        return result.modified_count == 1

    async def finish(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        worker: str,
        status: Status,
        attempts: list[Attempt],
        change: DeliveryChange,
    ) -> bool:
        """PROCESSING → a final status, appending the attempts; False if the claim was lost.

        Concurrent finishes go out as one unordered `bulk_write`; each caller learns whether
        its own record was the one updated.
        """
        now = utcnow()
        fields: dict[str, Any] = {
            **change.given(),
            "status": status.value,
            "updated_at": now,
            "completed_at": now,
        }
        if status is Status.DELIVERED:
            fields["delivered_at"] = now
        update: dict[str, Any] = {
            "$set": fields,
            "$unset": {"lease_until": "", "next_attempt_at": ""},
        }
        if attempts:
            update["$push"] = {"attempts": {"$each": _documents(attempts)}}
        op = UpdateOne(held_by(tenant_id, notification_id, worker), update)
        return await self._finishes.submit(None, _Finish(op, notification_id, worker, now))

    async def _finish_batch(self, _: None, finishes: list[_Finish]) -> list[bool | BaseException]:
        errors: dict[int, Any] = {}
        try:
            result = await self.col.bulk_write([f.op for f in finishes], ordered=False)
            if result.modified_count == len(finishes):
                return [True] * len(finishes)
        except BulkWriteError as exc:
            errors = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        # Some update matched nothing (a lost claim) or failed: the counts do not say which,
        # so read back whose record carries this finish (worker and completion time).
        ids = [f.notification_id for f in finishes]
        found = {d["_id"]: d async for d in self.col.find({"_id": {"$in": ids}})}
        outcomes: list[bool | BaseException] = []
        for index, f in enumerate(finishes):
            error = errors.get(index)
            if error is not None:
                outcomes.append(WriteError(error.get("errmsg"), error.get("code"), error))
                continue
            doc = found.get(f.notification_id) or {}
            outcomes.append(doc.get("worker") == f.worker and doc.get("completed_at") == f.at)
        return outcomes


def _claim_fields(now: datetime, *, worker: str, lease_s: int) -> Doc:
    return {
        "status": Status.PROCESSING.value,
        "processing_at": now,
        "lease_until": now + timedelta(seconds=lease_s),
        "worker": worker,
        "updated_at": now,
    }


def _documents(attempts: list[Attempt]) -> list[Doc]:
    return [a.model_dump(exclude_none=True) for a in attempts]


@dataclass(frozen=True, slots=True)
class _Finish:
    """One queued `finish`: its update and what identifies it on the record afterwards."""

    op: UpdateOne
    notification_id: str
    worker: str
    at: datetime
