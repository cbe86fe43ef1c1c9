"""Webhook events: recorded where a state changes, only for tenants that have endpoints.

The place a change happens (a delivery settled, a receipt applied, an inbox message read)
calls `WebhookEvents.emit`, which publishes a small message to the `events` worker's queue;
the worker fans it out to the tenant's endpoints. Whether a tenant has any endpoint is cached
per process for a few seconds, so a tenant without webhooks costs no database command per
notification (one look-up per tenant per TTL), and concurrent look-ups share one read.

An event id is derived from what happened (`<notification id>:delivered`), so an event
emitted twice is delivered once per endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from shared.db.base import utcnow
from shared.db.batching import Coalescer
from shared.db.webhooks import WebhooksRepo
from shared.domain import Status
from shared.messaging.broker import Broker
from shared.records import NotificationRecord
from shared.timefmt import iso_z

log = structlog.get_logger(__name__)

DELIVERED = "notification.delivered"
FAILED = "notification.failed"
OPTED_OUT = "notification.opted_out"
BOUNCED = "notification.bounced"
INBOX_READ = "inbox.read"
EVENT_TYPES = (DELIVERED, FAILED, OPTED_OUT, BOUNCED, INBOX_READ)

# A final status and the event it is announced as (CANCELLED announces nothing).
_BY_STATUS = {
    Status.DELIVERED: DELIVERED,
    Status.OPTED_OUT: OPTED_OUT,
    Status.FAILED: FAILED,
    Status.RATE_LIMITED: FAILED,
    Status.NO_CHANNEL: FAILED,
    Status.INVALID_CREDENTIAL: FAILED,
}


def event_for_status(status: Status) -> str | None:
    """The event a record's final status is announced as."""
    return _BY_STATUS.get(status)


def notification_data(
    record: NotificationRecord, *, status: Status, **extra: Any
) -> dict[str, Any]:
    """What a notification event says (camelCase, like seed 000)."""
    data: dict[str, Any] = {
        "notificationId": record.id,
        "transactionId": record.transaction_id,
        "userId": record.recipient,
        "channel": record.channel.api_name,
        "category": record.category,
        "result": status.result,
        "provider": record.provider,
        "providerMessageId": record.provider_message_id,
        "failureReason": record.failure_reason,
    }
    data.update(extra)
    return data


def event_message(
    *,
    tenant_id: str,
    event_type: str,
    event_id: str,
    data: Mapping[str, Any],
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The `webhook_event` message the events worker fans out."""
    return {
        "v": 1,
        "kind": "webhook_event",
        "tenant_id": tenant_id,
        "event_id": event_id,
        "type": event_type,
        "occurred_at": iso_z(occurred_at or utcnow()),
        "data": dict(data),
    }


class WebhookEvents:
    """Publishes webhook events for tenants with an active endpoint."""

    def __init__(
        self,
        *,
        webhooks: WebhooksRepo,
        broker: Broker,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._webhooks = webhooks
        self._broker = broker
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: dict[str, tuple[float, bool]] = {}
        self._lookups: Coalescer[str, None, bool] = Coalescer(self._lookup)

    async def wanted(self, tenant_id: str) -> bool:
        """Whether the tenant has an active endpoint (cached for `ttl_s`)."""
        cached = self._known.get(tenant_id)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._lookups.submit(tenant_id, None)
        self._known[tenant_id] = (now + self._ttl_s, found)
        return found

    async def _lookup(self, tenant_id: str, callers: list[None]) -> list[bool]:
        return [await self._webhooks.any_active(tenant_id=tenant_id)] * len(callers)

    def forget(self, tenant_id: str) -> None:
        """Drop the cached answer (this process just created or deleted an endpoint)."""
        self._known.pop(tenant_id, None)

    async def emit(
        self,
        *,
        tenant_id: str,
        event_type: str,
        event_id: str,
        data: Mapping[str, Any],
        occurred_at: datetime | None = None,
    ) -> bool:
        """Publish the event if the tenant has endpoints; True if published.

        Raises BrokerUnavailable when the publish is not confirmed (callers retry or log).
        """
        if not await self.wanted(tenant_id):
            return False
        await self._broker.publish_to_queue(
            queue=self._broker.topology.events_queue,
            body=event_message(
                tenant_id=tenant_id,
                event_type=event_type,
                event_id=event_id,
                data=data,
                occurred_at=occurred_at,
            ),
            message_id=event_id,
        )
        return True
