"""What an operator sees of a dead-lettered message, and the filters that select messages.

Pure code (no I/O): a `DeadLetter` is parsed from a message as the worker put it on the DLQ
(`shared/messaging/dead_letters.py` is the contract), a `DeadLetterFilter` decides whether an
operation applies to it, and `replay_headers` / `replay_body` say what goes back to the
original queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from shared.domain import Channel
from shared.messaging import dead_letters as contract
from shared.messaging.dead_letters import DeadLetterInfo
from shared.timefmt import iso_z

# Headers a replayed message does not carry: the failure it came back from, and what the
# broker added while it sat in a quorum queue.
_DROPPED_ON_REPLAY = frozenset(
    {
        contract.FAILURE_REASON,
        contract.FAILURE_DETAIL,
        contract.ATTEMPTS,
        contract.ORIGINAL_QUEUE,
        contract.FAILED_AT,
        contract.TENANT_ID,
        contract.TRANSACTION_ID,
        contract.NOTIFICATION_ID,
        contract.FINAL_STATUS,
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
REPLAYED_AT = "x-replayed-at"


def plain(value: Any) -> Any:
    """A header value as JSON-able data (AMQP tables can hold bytes, decimals, timestamps)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message on a DLQ, parsed; `position` is its place in the queue when read (0 = head)."""

    queue: str
    channel: Channel
    position: int
    info: DeadLetterInfo
    headers: dict[str, Any]
    body: dict[str, Any] | None
    raw_body: bytes
    message_id: str | None
    correlation_id: str | None
    priority: int
    redelivered: bool

    @classmethod
    def parse(
        cls,
        *,
        queue: str,
        channel: Channel,
        position: int,
        headers: Mapping[str, Any] | None,
        body: bytes,
        message_id: str | None,
        correlation_id: str | None,
        priority: int | None,
        redelivered: bool,
    ) -> DeadLetter:
        """Read a message; a body that is not a JSON object is kept raw (`body` None)."""
        table = plain(dict(headers or {}))
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
        return cls(
            queue=queue,
            channel=channel,
            position=position,
            info=DeadLetterInfo.from_headers(table),
            headers=table,
            body=decoded if isinstance(decoded, dict) else None,
            raw_body=body,
            message_id=message_id,
            correlation_id=correlation_id,
            priority=priority or 0,
            redelivered=redelivered,
        )

    def _from_body(self, key: str) -> str:
        value = (self.body or {}).get(key)
        return value if isinstance(value, str) else ""

    @property
    def notification_id(self) -> str:
        """From the header, else the body, else the AMQP message id."""
        return (
            self.info.notification_id or self._from_body("notification_id") or self.message_id or ""
        )

    @property
    def tenant_id(self) -> str:
        """From the header, else the body."""
        return self.info.tenant_id or self._from_body("tenant_id")

    @property
    def transaction_id(self) -> str:
        """From the header (the body does not carry it)."""
        return self.info.transaction_id

    @property
    def problem(self) -> str | None:
        """Why this message cannot be replayed as it is, or None."""
        if self.body is None:
            return "malformed_message"
        if not self.notification_id or not self.tenant_id:
            return "malformed_message"
        body_tenant = self._from_body("tenant_id")
        if body_tenant and body_tenant != self.tenant_id:
            return "malformed_message"  # headers and body disagree on the tenant
        body_channel = self._from_body("channel")
        if body_channel and body_channel != self.channel.value:
            return "malformed_message"  # on another channel's DLQ: its worker would misdeliver
        return None


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which messages an operation applies to; empty fields match everything.

    Time bounds are half-open: `failed_after <= failed_at < failed_before`; a message
    without a readable `x-failed-at` matches no time bound.
    """

    channels: frozenset[Channel] = field(default_factory=lambda: frozenset(Channel))
    tenant_id: str | None = None
    reason: str | None = None
    failed_before: datetime | None = None
    failed_after: datetime | None = None
    transaction_ids: frozenset[str] = frozenset()
    notification_ids: frozenset[str] = frozenset()

    @property
    def ordered_channels(self) -> list[Channel]:
        """The channels to scan, in the enum's order (so output is stable)."""
        return [c for c in Channel if c in self.channels]

    @property
    def names_messages(self) -> bool:
        """True when the filter lists transaction or notification ids."""
        return bool(self.transaction_ids or self.notification_ids)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether `letter` is selected."""
        if letter.channel not in self.channels:
            return False
        if self.tenant_id is not None and (
            letter.tenant_id != self.tenant_id
            or (letter.body or {}).get("tenant_id", self.tenant_id) != self.tenant_id
        ):
            return False
        if self.reason is not None and letter.info.reason != self.reason:
            return False
        if self.transaction_ids and letter.transaction_id not in self.transaction_ids:
            return False
        if self.notification_ids and letter.notification_id not in self.notification_ids:
            return False
        if self.failed_before is not None or self.failed_after is not None:
            failed_at = letter.info.failed_at
            if failed_at is None:
                return False
            if self.failed_before is not None and not failed_at < self.failed_before:
                return False
            if self.failed_after is not None and not failed_at >= self.failed_after:
                return False
        return True

    def describe(self) -> dict[str, Any]:
        """The filter as stored in the audit trail (BSON- and JSON-able)."""
        return {
            "channels": [c.value for c in self.ordered_channels],
            "tenant_id": self.tenant_id,
            "reason": self.reason,
            "failed_before": self.failed_before,
            "failed_after": self.failed_after,
            "transaction_ids": sorted(self.transaction_ids),
            "notification_ids": sorted(self.notification_ids),
        }


def replay_body(letter: DeadLetter) -> dict[str, Any]:
    """The original `deliver` body with `attempt` back at 1 (a new cycle of retries)."""
    return {**(letter.body or {}), "attempt": 1}


def replay_headers(letter: DeadLetter, *, replayed_at: datetime) -> dict[str, Any]:
    """The original headers without the failure ones, `attempt` 1 and `x-replayed-at`."""
    headers = {k: v for k, v in letter.headers.items() if k not in _DROPPED_ON_REPLAY}
    headers["attempt"] = 1
    headers[REPLAYED_AT] = iso_z(replayed_at)
    return headers
