"""What dead-letter operations return, and the audit document of a replay or purge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from shared.db.base import Doc
from shared.dlq.model import DeadLetter, DeadLetterFilter
from shared.records import NotificationRecord

Action = Literal["replay", "purge"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a long operation is: `scanned` of `total` messages of `queue` read so far."""

    queue: str
    scanned: int
    total: int
    affected: int  # replayed / purged (or, in a dry run, that would be) in the whole operation


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Listing:
    """What `list_dead_letters` saw."""

    letters: list[DeadLetter]
    record_status: dict[str, str]  # notification id → the record's status now
    scanned: int
    depth: int  # messages in the scanned DLQs when the operation began
    has_more: bool  # more matches may exist (the limit was reached or a DLQ exceeded the window)


@dataclass(frozen=True, slots=True)
class Detail:
    """One dead letter with its record (None when the record is gone)."""

    letter: DeadLetter
    record: NotificationRecord | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A selected message left in place, and why.

    Reasons: `malformed_message` (no JSON object, or no notification / tenant id),
    `unknown_original_queue`, `record_missing`, `record_channel_mismatch`,
    `record_not_dead_lettered`,
    `record_changed` (it moved on between reading and replaying it),
    `original_queue_missing` (the broker returned the replay).
    """

    letter: DeadLetter
    reason: str


@dataclass(slots=True)
class OperationResult:
    """A replay or purge: what was asked, and what it did (or, in a dry run, would do)."""

    operation_id: str
    action: Action
    dry_run: bool
    filters: DeadLetterFilter
    limit: int | None
    all_matching: bool
    actor: str
    correlation_id: str | None
    started_at: datetime
    affected: list[DeadLetter] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    matched: int = 0  # selected messages examined: affected + skipped
    scanned: int = 0
    has_more: bool = False  # stopped before reading every message (limit or window)
    error: str | None = None

    def audit_doc(self, *, duration_ms: float) -> Doc:
        """The `dead_letter_operations` document."""
        return {
            "_id": self.operation_id,
            "tenant_id": self.filters.tenant_id,
            "action": self.action,
            "dry_run": self.dry_run,
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "at": self.started_at,
            "duration_ms": round(duration_ms, 1),
            "filter": self.filters.describe(),
            "limit": self.limit,
            "all": self.all_matching,
            "scanned": self.scanned,
            "matched": self.matched,
            "count": len(self.affected),
            "notification_ids": [letter.notification_id for letter in self.affected],
            "skipped": [
                {"notification_id": s.letter.notification_id, "reason": s.reason}
                for s in self.skipped
            ],
            "error": self.error,
        }
