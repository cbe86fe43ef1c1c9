"""The `events` worker's two handlers: `events.queue` (receipts, webhook events, Novu jobs)
and `webhooks.queue` (webhook deliveries). Each job is idempotent; an outage requeues it."""

from __future__ import annotations

import structlog
from pymongo.errors import ConnectionFailure

from shared.errors import BrokerUnavailable
from workers.consumer import Handling, Inbound
from workers.events.fanout import WebhookFanout
from workers.events.novu_sync import NovuSync
from workers.events.receipts import ReceiptApplier
from workers.events.sender import WebhookSender

log = structlog.get_logger(__name__)

_OUTAGES = (BrokerUnavailable, ConnectionFailure)


class EventsHandler:
    """Routes an `events.queue` message by its `kind`."""

    def __init__(self, *, receipts: ReceiptApplier, fanout: WebhookFanout, novu: NovuSync) -> None:
        self._receipts = receipts
        self._fanout = fanout
        self._novu = novu

    async def handle(self, message: Inbound) -> Handling:
        """Run the job; REQUEUE on an outage (nothing it did is lost by running it again)."""
        body = message.body
        kind = body.get("kind")
        if not isinstance(body.get("tenant_id"), str):
            log.error("event_malformed", kind=kind)
            return Handling.REJECT
        try:
            if kind == "receipts":
                await self._receipts.apply(
                    tenant_id=body["tenant_id"],
                    receipt_ids=[str(i) for i in body.get("receipt_ids") or []],
                    attempt=int(body.get("attempt", 1)),
                )
            elif kind == "webhook_event":
                await self._fanout.fan_out(body)
            elif kind == "novu_subscriber":
                await self._novu.mirror_subscriber(body)
            elif kind == "novu_cancel":
                await self._novu.cancel(body)
            else:
                log.error("event_kind_unknown", kind=kind)
                return Handling.REJECT
        except _OUTAGES as exc:
            log.warning("event_not_handled", kind=kind, error=str(exc))
            return Handling.REQUEUE
        return Handling.ACK

    async def abandon(self, message: Inbound) -> None:
        """Nothing to hand back: every job can simply run again."""


class WebhookDeliveryHandler:
    """Makes the delivery a `webhooks.queue` message names."""

    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    async def handle(self, message: Inbound) -> Handling:
        """One attempt (or none, if it is not due); REQUEUE on an outage."""
        body = message.body
        tenant_id, delivery_id = body.get("tenant_id"), body.get("delivery_id")
        if not isinstance(tenant_id, str) or not isinstance(delivery_id, str):
            log.error("webhook_job_malformed")
            return Handling.REJECT
        try:
            await self._sender.deliver(
                tenant_id=tenant_id, delivery_id=delivery_id, attempt=int(body.get("attempt", 1))
            )
        except _OUTAGES as exc:
            log.warning("webhook_job_not_handled", error=str(exc))
            return Handling.REQUEUE
        return Handling.ACK

    async def abandon(self, message: Inbound) -> None:
        """A cut-off call leaves its `calling` mark; the redelivered job records it."""
