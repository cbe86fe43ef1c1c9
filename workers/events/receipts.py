"""Applying provider receipts to records (docs/webhooks.md).

Each step is idempotent on the receipt id, so a receipt applied twice (a redelivered job, a
provider's duplicate) changes nothing twice; the receipt is marked applied last. A receipt
whose record is not yet found, or not yet final (a fast `delivered` can beat the worker's own
write), is tried again a few times through the delay levels, then recorded as concerning an
unknown message.
"""

from __future__ import annotations

from typing import Any

import structlog

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.db.suppressions import REASON_BOUNCED, REASON_OPTED_OUT
from shared.domain import Channel, Status
from shared.messaging.broker import Broker
from shared.records import NotificationRecord
from shared.webhooks.events import BOUNCED, WebhookEvents, notification_data

log = structlog.get_logger(__name__)

UNMATCHED_TRIES = 6  # about a minute of waiting for the record (1+2+4+8+16+32 s)
_SUPPRESSIBLE = (Channel.EMAIL, Channel.SMS)


class ReceiptApplier:
    """Applies stored receipts of one tenant."""

    def __init__(self, *, db: Database, broker: Broker, events: WebhookEvents) -> None:
        self._db = db
        self._broker = broker
        self._events = events

    async def apply(self, *, tenant_id: str, receipt_ids: list[str], attempt: int) -> None:
        """Apply the receipts named; those not applicable yet are queued again (bounded)."""
        later: list[str] = []
        for receipt in await self._db.receipts.get_many(
            tenant_id=tenant_id, receipt_ids=receipt_ids
        ):
            if receipt.get("applied_at") is not None:
                continue
            if not await self._apply_one(tenant_id, receipt):
                later.append(str(receipt["receipt_id"]))
        if not later:
            return
        if attempt < UNMATCHED_TRIES:
            await self._broker.publish_to_queue(
                queue=self._broker.topology.events_queue,
                body={
                    "v": 1,
                    "kind": "receipts",
                    "tenant_id": tenant_id,
                    "receipt_ids": later,
                    "attempt": attempt + 1,
                },
                delay_s=2 ** (attempt - 1),
            )
            return
        for receipt_id in later:
            log.warning("receipt_for_unknown_message", tenant_id=tenant_id, receipt_id=receipt_id)
            await self._db.receipts.mark_applied(
                tenant_id=tenant_id,
                receipt_id=receipt_id,
                outcome="unknown_message",
                notification_id=None,
            )

    async def _apply_one(self, tenant_id: str, receipt: Doc) -> bool:
        """Apply one receipt; False when its record is not there (or not final) yet."""
        repo = self._db.notifications
        record = await repo.find_for_receipt(
            tenant_id=tenant_id,
            notification_id=receipt.get("notification_id"),
            provider_message_id=receipt.get("provider_message_id"),
        )
        if record is None or not record.status.is_final:
            return False
        receipt_id = str(receipt["receipt_id"])
        kind = str(receipt.get("kind"))
        at = receipt.get("occurred_at") or receipt.get("received_at") or utcnow()
        entry: dict[str, Any] = {
            "receipt_id": receipt_id,
            "provider": receipt.get("provider"),
            "kind": kind,
            "event": receipt.get("event"),
            "at": at,
            "detail": receipt.get("detail"),
        }
        await repo.add_receipt(tenant_id=tenant_id, notification_id=record.id, entry=entry)
        if kind == "delivered":
            await repo.confirm_delivery(tenant_id=tenant_id, notification_id=record.id, at=at)
        elif kind == "hard_bounce":
            await self._bounce(record, receipt, receipt_id)
        elif kind == "complaint":
            await self._suppress(record, receipt, REASON_OPTED_OUT)
        await self._db.receipts.mark_applied(
            tenant_id=tenant_id, receipt_id=receipt_id, outcome=kind, notification_id=record.id
        )
        log.info("receipt_applied", kind=kind, notification_id=record.id, receipt_id=receipt_id)
        return True

    async def _bounce(self, record: NotificationRecord, receipt: Doc, receipt_id: str) -> None:
        repo = self._db.notifications
        detail = receipt.get("detail")
        reason = f"bounced:{receipt.get('provider')}:{receipt.get('event')}"
        await repo.mark_bounced(
            tenant_id=record.tenant_id,
            notification_id=record.id,
            receipt_id=receipt_id,
            reason=reason,
            detail=str(detail) if detail else None,
        )
        await self._suppress(record, receipt, REASON_BOUNCED)
        # Announced by whichever run of this receipt finds the move its own (once per id).
        if (
            await repo.bounced_by(tenant_id=record.tenant_id, notification_id=record.id)
            == receipt_id
        ):
            await self._events.emit(
                tenant_id=record.tenant_id,
                event_type=BOUNCED,
                event_id=f"{record.id}:{BOUNCED}",
                data=notification_data(
                    record,
                    status=Status.INVALID_CREDENTIAL,
                    failureReason=reason,
                    address=receipt.get("address"),
                    receiptEvent=receipt.get("event"),
                ),
            )

    async def _suppress(self, record: NotificationRecord, receipt: Doc, reason: str) -> None:
        address = receipt.get("address")
        if record.channel not in _SUPPRESSIBLE or not isinstance(address, str) or not address:
            return
        await self._db.suppressions.suppress(
            tenant_id=record.tenant_id,
            channel=record.channel.value,
            address=address,
            reason=reason,
            source=f"{receipt.get('provider')}:{receipt.get('event')}",
            notification_id=record.id,
            detail=receipt.get("detail"),
        )
