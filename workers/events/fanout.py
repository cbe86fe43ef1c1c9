"""A webhook event → one delivery per endpoint of the tenant that subscribed to its type.

A delivery's id is `<event id>:<webhook id>`, so a redelivered event stores nothing new; each
delivery's job is published (again, if the event is redelivered: the sender ignores a job for
an attempt already made).
"""

from __future__ import annotations

from typing import Any

import structlog

from shared.db.client import Database
from shared.messaging.broker import Broker

log = structlog.get_logger(__name__)


def delivery_job(*, tenant_id: str, delivery_id: str, attempt: int) -> dict[str, Any]:
    """The message on `webhooks.queue` for attempt `attempt` of a delivery."""
    return {
        "v": 1,
        "kind": "webhook_delivery",
        "tenant_id": tenant_id,
        "delivery_id": delivery_id,
        "attempt": attempt,
    }


class WebhookFanout:
    """Stores an event's deliveries and queues them."""

    def __init__(self, *, db: Database, broker: Broker) -> None:
        self._db = db
        self._broker = broker

    async def fan_out(self, body: dict[str, Any]) -> int:
        """Deliveries queued for the event; 0 when no endpoint wants it."""
        tenant_id = str(body["tenant_id"])
        event_id = str(body["event_id"])
        event_type = str(body["type"])
        payload = {
            "type": event_type,
            "timestamp": body.get("occurred_at"),
            "data": body.get("data") or {},
        }
        queued = 0
        for hook in await self._db.webhooks.active_for(tenant_id=tenant_id):
            if event_type not in hook.get("events", []):
                continue
            delivery_id = f"{event_id}:{hook['webhook_id']}"
            await self._db.webhook_deliveries.create(
                {
                    "_id": delivery_id,
                    "tenant_id": tenant_id,
                    "webhook_id": hook["webhook_id"],
                    "event_id": event_id,
                    "event_type": event_type,
                    "payload": payload,
                }
            )
            await self._broker.publish_to_queue(
                queue=self._broker.topology.webhooks_queue,
                body=delivery_job(tenant_id=tenant_id, delivery_id=delivery_id, attempt=1),
                message_id=delivery_id,
            )
            queued += 1
        log.info("webhook_event_fanned_out", event_type=event_type, deliveries=queued)
        return queued
