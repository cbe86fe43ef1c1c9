"""Publishing a record's `deliver` message: at once, or parked in the delay levels."""

from __future__ import annotations

import math
from datetime import datetime

from shared.db.base import utcnow
from shared.messaging.broker import Broker
from shared.messaging.messages import deliver_message, digest_flush_message
from shared.records import NotificationRecord


def seconds_until(when: datetime | None, *, now: datetime | None = None) -> int:
    """Whole seconds from now until `when` (0 when it has come); the delay levels count in s."""
    if when is None:
        return 0
    return max(0, math.ceil((when - (now or utcnow())).total_seconds()))


async def publish_delivery(
    broker: Broker,
    record: NotificationRecord,
    *,
    attempt: int | None = None,
    delay_s: int | None = None,
) -> None:
    """Publish the record's message with a confirm, or raise BrokerUnavailable.

    Without `delay_s`, a record with a `deliver_at` still ahead is parked until then.
    `attempt` (default: the next one) only labels the message for logs: the record decides.
    """
    number = record.attempt_count + 1 if attempt is None else attempt
    await broker.publish_notification(
        channel=record.channel,
        body=deliver_message(
            notification_id=record.id,
            tenant_id=record.tenant_id,
            channel=record.channel.value,
            attempt=number,
        ),
        priority=record.priority,
        correlation_id=record.correlation_id,
        delay_s=seconds_until(record.deliver_at) if delay_s is None else delay_s,
    )


async def publish_digest_flush(
    broker: Broker, *, tenant_id: str, digest_id: str, due: datetime
) -> None:
    """Have the digest worker close this digest at `due` (parked in the delay levels)."""
    await broker.publish_digest(
        body=digest_flush_message(tenant_id=tenant_id, digest_id=digest_id),
        delay_s=seconds_until(due),
    )
