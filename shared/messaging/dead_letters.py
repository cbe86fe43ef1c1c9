"""The dead-letter message contract (DESIGN.md §3): what a worker puts on a DLQ, what ops read.

A worker publishes a failed message to the channel's DLQ itself, with confirms, carrying the
headers below (`x-death` alone holds no error text). The body is the original `deliver`
message; the record in MongoDB stays the source of truth for content and attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.timefmt import iso_z

FAILURE_REASON = "x-failure-reason"
FAILURE_DETAIL = "x-failure-detail"
ATTEMPTS = "x-attempts"
ORIGINAL_QUEUE = "x-original-queue"
FAILED_AT = "x-failed-at"
TENANT_ID = "x-tenant-id"
TRANSACTION_ID = "x-transaction-id"
NOTIFICATION_ID = "x-notification-id"
FINAL_STATUS = "x-final-status"

_DETAIL_MAX = 1000


def dead_letter_headers(
    *,
    reason: str,
    detail: str | None,
    attempts: int,
    original_queue: str,
    failed_at: datetime,
    tenant_id: str,
    transaction_id: str | None,
    notification_id: str,
    final_status: str,
    correlation_id: str | None,
) -> dict[str, Any]:
    """Headers of a message published to a DLQ."""
    return {
        FAILURE_REASON: reason,
        FAILURE_DETAIL: (detail or "")[:_DETAIL_MAX],
        ATTEMPTS: attempts,
        ORIGINAL_QUEUE: original_queue,
        FAILED_AT: iso_z(failed_at),
        TENANT_ID: tenant_id,
        TRANSACTION_ID: transaction_id or "",
        NOTIFICATION_ID: notification_id,
        FINAL_STATUS: final_status,
        "correlation_id": correlation_id,
        "attempt": attempts,
    }


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    """The failure headers of a dead-lettered message, parsed."""

    reason: str
    detail: str
    attempts: int
    original_queue: str
    failed_at: datetime | None
    tenant_id: str
    transaction_id: str
    notification_id: str
    final_status: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> DeadLetterInfo:
        """Parse the headers; missing ones read as empty (a message put there by hand)."""

        def text(name: str) -> str:
            value = headers.get(name)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return "" if value is None else str(value)

        failed_at: datetime | None
        try:
            failed_at = datetime.fromisoformat(text(FAILED_AT).replace("Z", "+00:00"))
        except ValueError:
            failed_at = None
        try:
            attempts = int(text(ATTEMPTS) or 0)
        except ValueError:
            attempts = 0
        return cls(
            reason=text(FAILURE_REASON),
            detail=text(FAILURE_DETAIL),
            attempts=attempts,
            original_queue=text(ORIGINAL_QUEUE),
            failed_at=failed_at,
            tenant_id=text(TENANT_ID),
            transaction_id=text(TRANSACTION_ID),
            notification_id=text(NOTIFICATION_ID),
            final_status=text(FINAL_STATUS),
        )
