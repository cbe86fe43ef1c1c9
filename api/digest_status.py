"""A digest event seen through the transaction RPCs: its delivery status, and cancelling it.

A digest event has no notification record of its own until its digest is sent; these answer
for it where `manage/get-delivery-status` and `manage/cancel` find no record.
"""

from __future__ import annotations

from typing import Any

from api.context import AppContext
from shared.db.base import Doc, utcnow
from shared.db.digests import DigestState
from shared.domain import Channel
from shared.errors import Conflict, NotFound
from shared.timefmt import iso_z


def _event_in(doc: Doc, transaction_id: str) -> tuple[Doc, bool]:
    """The event's entry and whether it was cancelled."""
    for event in doc.get("events", []):
        if event["transaction_id"] == transaction_id:
            return event, False
    for event in doc.get("cancelled", []):
        if event["transaction_id"] == transaction_id:
            return event, True
    raise LookupError(transaction_id)


async def digest_event_status(
    ctx: AppContext, *, tenant_id: str, transaction_id: str
) -> dict[str, Any] | None:
    """SENT until the event's digest is sent, then the digest notification's result; None
    when no digest holds that transaction."""
    doc = await ctx.db.digests.find_by_event(tenant_id=tenant_id, transaction_id=transaction_id)
    if doc is None:
        return None
    event, cancelled = _event_in(doc, transaction_id)
    view: dict[str, Any] = {
        "transactionId": transaction_id,
        "channel": Channel(doc["channel"]).api_name,
        "result": "CANCELLED" if cancelled else "SENT",
        "digestId": doc["_id"],
        "providerMessageId": None,
        "queuedAt": iso_z(event.get("at")),
        "deliveredAt": None,
        "scheduledFor": iso_z(doc.get("closes_at")),
    }
    notification_id = doc.get("notification_id")
    if not cancelled and doc["state"] == DigestState.SENT.value and notification_id:
        record = await ctx.db.notifications.get(
            tenant_id=tenant_id, notification_id=notification_id
        )
        if record is not None:
            view.update(
                result=record.status.result,
                providerMessageId=record.provider_message_id,
                deliveredAt=iso_z(record.delivered_at),
                failureReason=record.failure_reason,
                digestTransactionId=record.transaction_id,
            )
    return view


async def cancel_digest_event(
    ctx: AppContext, *, tenant_id: str, transaction_id: str
) -> dict[str, Any]:
    """Take the event out of its open digest; 404 if unknown, 409 if too late."""
    digests = ctx.db.digests
    if await digests.remove_event(
        tenant_id=tenant_id, transaction_id=transaction_id, cancelled_at=utcnow()
    ):
        doc = await digests.find_by_event(tenant_id=tenant_id, transaction_id=transaction_id)
        return {
            "transactionId": transaction_id,
            "cancelled": True,
            "digestId": doc["_id"] if doc else None,
        }
    doc = await digests.find_by_event(tenant_id=tenant_id, transaction_id=transaction_id)
    if doc is None:
        records = await ctx.db.notifications.find_by_transaction(
            tenant_id=tenant_id, transaction_id=transaction_id
        )
        if records:  # a LOOK_BACK event sent at once, as a normal notification
            raise Conflict(
                f"transaction {transaction_id} was sent at once, not digested: use manage/cancel"
            )
        raise NotFound(f"digest event {transaction_id} does not exist")
    _, cancelled = _event_in(doc, transaction_id)
    if cancelled:
        raise Conflict(f"digest event {transaction_id} is already cancelled")
    raise Conflict(
        f"digest event {transaction_id}: its digest {doc['_id']} is already {doc['state'].lower()}"
    )
