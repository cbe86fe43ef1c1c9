"""Taking records back from failures: the maintenance sweep's cases and dead-letter replays.

Several maintenance workers may run: each record is taken by a conditional update that stops
it matching, so only the sweeper whose update modified it owns it. Replays name the
dead-lettering they replay (`dead_lettered_at`), so a second copy changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.db.base import Doc, utcnow
from shared.db.notifications.cancel import CancellableStore
from shared.db.notifications.documents import DEAD_LETTERED, from_document, values
from shared.db.notifications.receipts import NotificationReceipts
from shared.db.notifications.transactions import TransactionReads
from shared.domain import Status
from shared.records import NotificationRecord

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


class NotificationsRepo(CancellableStore, NotificationReceipts, TransactionReads):
    """The store, cancelling, receipt writes, and the recovery paths (sweep and replay)."""

    # --- the maintenance sweep (any tenant) ----------------------------------------------------

    async def requeue_expired_leases(
        self, *, expired_before: datetime, lock_until: datetime, limit: int
    ) -> list[NotificationRecord]:
        """PROCESSING records whose worker died (lease expired) → QUEUED, to publish again."""
        return await self._take(
            {"status": Status.PROCESSING.value, "lease_until": {"$lt": expired_before}},
            _requeue(lock_until),
            limit,
        )

    async def requeue_overdue_retries(
        self, *, due_before: datetime, lock_until: datetime, limit: int
    ) -> list[NotificationRecord]:
        """RETRYING records whose delayed message is overdue (it was lost) → QUEUED."""
        return await self._take(
            {"status": Status.RETRYING.value, "next_attempt_at": {"$lt": due_before}},
            _requeue(lock_until),
            limit,
        )

    async def requeue_overdue_scheduled(
        self, *, due_before: datetime, lock_until: datetime, limit: int
    ) -> list[NotificationRecord]:
        """DELAYED / SCHEDULED records whose parked message is overdue (it was lost) → QUEUED."""
        return await self._take(
            {
                "status": {"$in": values((Status.DELAYED, Status.SCHEDULED))},
                "deliver_at": {"$lt": due_before},
            },
            _requeue(lock_until),
            limit,
        )

    async def lock_unpublished(
        self, *, untouched_since: datetime, channels: list[str], lock_until: datetime, limit: int
    ) -> list[NotificationRecord]:
        """QUEUED records of `channels` that nothing has changed since `untouched_since`,
        locked for one sweeper.

        The caller passes the channels whose queue holds no message: such a record's message
        was never published (the API died before the confirm) or was lost, as nothing ahead of
        it is left to deliver it. Stored, released or re-queued records all set `updated_at`;
        a claim moves the record out of QUEUED. The lock (`sweep_until`) lapses on its own,
        so a record whose new message is lost again is taken again after it.
        """
        if not channels:
            return []
        now = utcnow()
        return await self._take(
            {
                "status": Status.QUEUED.value,
                "updated_at": {"$lt": untouched_since},
                "channel": {"$in": channels},
                "sweep_until": {"$not": {"$gte": now}},  # none, or lapsed (no `$or`)
            },
            {"$set": {"sweep_until": lock_until, "updated_at": now}},
            limit,
        )

    async def _take(self, query: Doc, change: Doc, limit: int) -> list[NotificationRecord]:
        """Records matching `query`, each taken by a conditional update that unmatches it."""
        taken: list[NotificationRecord] = []
        cursor = self.col.find(query, projection={"_id": 1}).limit(limit)
        for candidate in [d async for d in cursor]:
            result = await self.col.update_one({**query, "_id": candidate["_id"]}, change)
            if result.modified_count == 1:
                doc = await self.col.find_one({"_id": candidate["_id"]})
                if doc is not None:
                    taken.append(from_document(doc))
        return taken

    # --- dead-letter replay (shared/dlq) ---------------------------------------------------

    async def requeue_dead_lettered(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        dead_lettered_at: datetime,
        replayed_at: datetime,
    ) -> bool:
        """FAILED / RATE_LIMITED and dead-lettered → QUEUED for a replay; False if it moved on."""
        result = await self.col.update_one(
            {
                "_id": notification_id,
                "tenant_id": tenant_id,
                "status": {"$in": values(DEAD_LETTERED)},
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
        self,
        *,
        tenant_id: str,
        notification_id: str,
        previous: NotificationRecord,
        replayed_at: datetime,
    ) -> bool:
        """Undo `requeue_dead_lettered` when the replay was not published; False if taken.

        Only a record still QUEUED by this very replay and never confirmed as enqueued is put
        back, so a worker that already claimed it keeps it.
        """
        before = previous.model_dump(include={*_REPLAY_UNSET, *_REPLAY_SET}, exclude_none=True)
        restore: Doc = {"updated_at": utcnow()}
        clear: Doc = {}
        for name in (*_REPLAY_UNSET, *_REPLAY_SET):
            if name in before:
                restore[name] = before[name]
            else:
                clear[name] = ""
        change: dict[str, Any] = {"$set": restore, "$inc": {"replays": -1}}
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


def _requeue(lock_until: datetime) -> Doc:
    """Back to QUEUED with no claim, locked for this sweeper until published."""
    return {
        "$set": {"status": Status.QUEUED.value, "sweep_until": lock_until, "updated_at": utcnow()},
        "$unset": {"lease_until": "", "enqueued_at": "", "worker": "", "next_attempt_at": ""},
        "$inc": {"sweeps": 1},
    }
