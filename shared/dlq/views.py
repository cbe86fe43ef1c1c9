"""Dead letters and operations as camelCase JSON: what the admin RPCs answer and what
`notifyctl --json` prints, so both show the same shapes.

A record is shown without its content, variables or metadata (they may hold personal data
or one-time links); the attempts, statuses and failure reasons are what an operator needs.
"""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.dlq.model import DeadLetter
from shared.dlq.results import Detail, Listing, OperationResult
from shared.domain import Channel
from shared.records import NotificationRecord
from shared.timefmt import iso_z


def letter_view(letter: DeadLetter, *, record_status: str | None = None) -> dict[str, Any]:
    """One DLQ message as a list row."""
    return {
        "notificationId": letter.notification_id or None,
        "transactionId": letter.transaction_id or None,
        "tenantId": letter.tenant_id or None,
        "channel": letter.channel.api_name,
        "reason": letter.info.reason or None,
        "detail": letter.info.detail or None,
        "attempts": letter.info.attempts,
        "failedAt": iso_z(letter.info.failed_at),
        "originalQueue": letter.info.original_queue or None,
        "finalStatus": letter.info.final_status or None,
        "recordStatus": record_status,
        "position": letter.position,
    }


def listing_view(listing: Listing) -> dict[str, Any]:
    """`list-dead-letters`."""
    return {
        "deadLetters": [
            letter_view(x, record_status=listing.record_status.get(x.notification_id))
            for x in listing.letters
        ],
        "count": len(listing.letters),
        "scanned": listing.scanned,
        "queueDepth": listing.depth,
        "hasMore": listing.has_more,
    }


def record_view(record: NotificationRecord) -> dict[str, Any]:
    """A notification record without content, variables, metadata or claim details."""
    return {
        "notificationId": record.id,
        "status": record.status.value,
        "channel": record.channel.api_name,
        "userId": record.recipient,
        "transactionId": record.transaction_id,
        "priority": record.priority,
        "templateCode": record.template.code if record.template else None,
        "provider": record.provider,
        "failureReason": record.failure_reason,
        "failureDetail": record.failure_detail,
        "attemptCount": record.attempt_count,
        "replays": record.replays,
        "createdAt": iso_z(record.created_at),
        "queuedAt": iso_z(record.queued_at),
        "deadLetteredAt": iso_z(record.dead_lettered_at),
        "replayedAt": iso_z(record.replayed_at),
        "updatedAt": iso_z(record.updated_at),
        "attempts": [
            {
                "attempt": a.n,
                "at": iso_z(a.at),
                "provider": a.provider,
                "outcome": a.outcome,
                "reason": a.reason,
                "detail": a.detail,
                "durationMs": a.duration_ms,
            }
            for a in record.attempts
        ],
    }


def detail_view(detail: Detail) -> dict[str, Any]:
    """`get-dead-letter`: the row, the message as stored and the record."""
    letter = detail.letter
    return {
        **letter_view(letter, record_status=detail.record.status.value if detail.record else None),
        "message": {
            "headers": letter.headers,
            "body": letter.body
            if letter.body is not None
            else letter.raw_body.decode("utf-8", "replace"),
            "messageId": letter.message_id,
            "correlationId": letter.correlation_id,
            "priority": letter.priority,
            "redelivered": letter.redelivered,
        },
        "record": record_view(detail.record) if detail.record is not None else None,
    }


def result_view(result: OperationResult) -> dict[str, Any]:
    """`replay-dead-letters` / `purge-dead-letters`."""
    return {
        "operationId": result.operation_id,
        "action": result.action,
        "dryRun": result.dry_run,
        "count": len(result.affected),
        "notificationIds": [x.notification_id for x in result.affected],
        "skipped": [
            {
                "notificationId": s.letter.notification_id or None,
                "transactionId": s.letter.transaction_id or None,
                "reason": s.reason,
            }
            for s in result.skipped
        ],
        "matched": result.matched,
        "scanned": result.scanned,
        "hasMore": result.has_more,
    }


def operation_view(doc: Doc) -> dict[str, Any]:
    """One audited operation (`list-dead-letter-operations`, `notifyctl dlq history`)."""
    f = doc.get("filter") or {}
    return {
        "operationId": doc["_id"],
        "action": doc.get("action"),
        "dryRun": doc.get("dry_run"),
        "actor": doc.get("actor"),
        "at": iso_z(doc.get("at")),
        "tenantId": doc.get("tenant_id"),
        "filter": {
            "channels": [Channel(c).api_name for c in f.get("channels", [])],
            "reason": f.get("reason"),
            "failedBefore": iso_z(f.get("failed_before")),
            "failedAfter": iso_z(f.get("failed_after")),
            "transactionIds": f.get("transaction_ids", []),
            "notificationIds": f.get("notification_ids", []),
        },
        "limit": doc.get("limit"),
        "all": doc.get("all"),
        "count": doc.get("count"),
        "notificationIds": doc.get("notification_ids", []),
        "skipped": [
            {"notificationId": s.get("notification_id"), "reason": s.get("reason")}
            for s in doc.get("skipped", [])
        ],
        "matched": doc.get("matched"),
        "scanned": doc.get("scanned"),
        "error": doc.get("error"),
        "durationMs": doc.get("duration_ms"),
        "correlationId": doc.get("correlation_id"),
    }
