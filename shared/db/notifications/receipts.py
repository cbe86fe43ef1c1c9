"""A delivered record's later history: what provider receipts say happened to it afterwards.

Each write is idempotent on the receipt's id, so an event applied twice (a redelivered job, a
provider's duplicate) changes nothing the second time, and order does not matter: a bounce
wins over a `delivered` whichever comes first, and a `delivered` after a bounce confirms
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.db.base import utcnow
from shared.db.notifications.documents import by_id, from_document
from shared.db.notifications.repo import NotificationStore
from shared.domain import Status
from shared.records import NotificationRecord


class NotificationReceipts(NotificationStore):
    """Receipt writes on the `notifications` collection."""

    async def find_for_receipt(
        self, *, tenant_id: str, notification_id: str | None, provider_message_id: str | None
    ) -> NotificationRecord | None:
        """The record a receipt concerns: by our id when the provider echoes it, else by the
        provider's message id (indexed)."""
        doc = None
        if notification_id:
            doc = await self.col.find_one(by_id(tenant_id, notification_id))
        if doc is None and provider_message_id:
            doc = await self.col.find_one(
                {"provider_message_id": provider_message_id, "tenant_id": tenant_id}
            )
        return from_document(doc) if doc is not None else None

    async def add_receipt(
        self, *, tenant_id: str, notification_id: str, entry: dict[str, Any]
    ) -> bool:
        """Append a receipt to the record's history, once per receipt id; True if appended."""
        result = await self.col.update_one(
            {
                **by_id(tenant_id, notification_id),
                "receipts.receipt_id": {"$ne": entry["receipt_id"]},
            },
            {"$push": {"receipts": entry}},
        )
        return result.modified_count == 1

    async def confirm_delivery(self, *, tenant_id: str, notification_id: str, at: datetime) -> bool:
        """DELIVERED and not bounced: the provider saw it reach the recipient (`confirmed_at`)."""
        result = await self.col.update_one(
            {
                **by_id(tenant_id, notification_id),
                "status": {"$eq": Status.DELIVERED.value},
                "confirmed_at": {"$exists": False},
            },
            {"$set": {"confirmed_at": at, "updated_at": utcnow()}},
        )
        return result.modified_count == 1

    async def mark_bounced(
        self,
        *,
        tenant_id: str,
        notification_id: str,
        receipt_id: str,
        reason: str,
        detail: str | None,
    ) -> bool:
        """DELIVERED → INVALID_CREDENTIAL: the address proved dead after the provider took it.

        `bounced_by` names the receipt, so the move happens once and its webhook event can be
        told apart from a later bounce of the same message.
        """
        now = utcnow()
        result = await self.col.update_one(
            {**by_id(tenant_id, notification_id), "status": {"$eq": Status.DELIVERED.value}},
            {
                "$set": {
                    "status": Status.INVALID_CREDENTIAL.value,
                    "bounced_by": receipt_id,
                    "failure_reason": reason,
                    "failure_detail": detail,
                    "updated_at": now,
                    "completed_at": now,
                }
            },
        )
        return result.modified_count == 1

    async def bounced_by(self, *, tenant_id: str, notification_id: str) -> str | None:
        """The receipt that moved the record to INVALID_CREDENTIAL, if one did."""
        doc = await self.col.find_one(
            by_id(tenant_id, notification_id), projection={"bounced_by": 1}
        )
        return str(doc["bounced_by"]) if doc and doc.get("bounced_by") else None
