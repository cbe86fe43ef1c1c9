"""Cancelling a transaction: every record not yet started becomes CANCELLED, atomically each.

A record's message may still be parked in the delay levels (a parked message cannot be
deleted): when it arrives, the claim refuses a CANCELLED record and the message is dropped.
Each record moves by one conditional update, so a cancel racing a due message either wins
(never sent) or loses to the claim (sent once, reported as not cancelled).
"""

from __future__ import annotations

import uuid

from shared.db.base import utcnow
from shared.db.notifications.documents import from_document, values
from shared.db.notifications.repo import NotificationStore
from shared.domain import Status
from shared.records import NotificationRecord

# Not started delivery: waiting for its time, in the queue, or between attempts.
CANCELLABLE = (Status.DELAYED, Status.SCHEDULED, Status.QUEUED, Status.RETRYING)


class CancellableStore(NotificationStore):
    """`NotificationStore` plus cancelling."""

    async def cancel_transaction(
        self, *, tenant_id: str, transaction_id: str
    ) -> tuple[list[NotificationRecord], set[str]]:
        """Cancel what has not started; every record of the transaction, and the ids this
        very call cancelled (a token tells them from records cancelled before)."""
        now = utcnow()
        token = uuid.uuid4().hex
        await self.col.update_many(
            {
                "tenant_id": tenant_id,
                "transaction_id": transaction_id,
                "status": {"$in": values(CANCELLABLE)},
            },
            {
                "$set": {
                    "status": Status.CANCELLED.value,
                    "failure_reason": "cancelled",
                    "cancelled_at": now,
                    "completed_at": now,
                    "updated_at": now,
                    "cancel_token": token,
                },
                "$unset": {"next_attempt_at": "", "lease_until": "", "sweep_until": ""},
            },
        )
        docs = [
            d
            async for d in self.col.find(
                {"tenant_id": tenant_id, "transaction_id": transaction_id}
            ).sort("_id", 1)
        ]
        cancelled = {d["_id"] for d in docs if d.get("cancel_token") == token}
        return [from_document(d) for d in docs], cancelled
