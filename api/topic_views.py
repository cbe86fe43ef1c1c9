"""What the topic RPCs answer, and a topic send's delivery status (counts, never rows)."""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.db.notifications.transactions import TransactionCounts
from shared.domain import Channel
from shared.records import NotificationRecord
from shared.timefmt import iso_z as iso


def topic_view(doc: Doc) -> dict[str, Any]:
    """A topic."""
    return {
        "topicKey": doc["key"],
        "name": doc.get("name"),
        "createdAt": iso(doc.get("created_at")),
    }


def fanout_result(fanout: Doc, counts: TransactionCounts) -> str:
    """SENT until the fan-out is done and every record final; then the one result they share,
    or FAILED when they differ (the summary says which); DELIVERED for nobody to send to."""
    by_result = counts.by_result()
    if fanout["state"] != "DONE" or by_result.get("SENT"):
        return "SENT"
    if not by_result:
        return "DELIVERED"
    if len(by_result) == 1:
        return next(iter(by_result))
    return "FAILED"


def fanout_status_view(fanout: Doc, counts: TransactionCounts) -> dict[str, Any]:
    """`manage/get-delivery-status` of a topic send: the seed's fields, `summary` (count per
    result and `total`) and the fan-out's progress; the rows are in
    `manage/list-transaction-recipients`."""
    channel = fanout.get("channel")
    return {
        "transactionId": fanout["_id"],
        "channel": Channel(channel).api_name if channel else None,
        "result": fanout_result(fanout, counts),
        "providerMessageId": None,
        "queuedAt": iso(fanout.get("created_at")),
        "deliveredAt": iso(counts.last_delivered_at),
        "scheduledFor": None,
        "topicKey": fanout["topic_key"],
        "summary": {**counts.by_result(), "total": counts.total},
        "fanout": {
            "state": fanout["state"],
            "recipients": int(fanout.get("recipients", 0)),
            "excluded": int(fanout.get("excluded", 0)),
            "completedAt": iso(fanout.get("completed_at")),
        },
    }


def recipient_row(record: NotificationRecord) -> dict[str, Any]:
    """One recipient of a transaction."""
    return {
        "userId": record.recipient,
        "notificationId": record.id,
        "channel": record.channel.api_name,
        "result": record.status.result,
        "providerMessageId": record.provider_message_id,
        "failureReason": record.failure_reason,
        "deliveredAt": iso(record.delivered_at),
        "scheduledFor": iso(record.deliver_at),
    }
