"""The `events` worker (`python -m workers events`): applies provider receipts, delivers signed
webhooks to tenants, and runs Novu mirroring jobs (docs/webhooks.md, docs/novu.md)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import httpx
import structlog

from shared.db.base import utcnow
from shared.db.client import Database
from shared.messaging.broker import Broker
from shared.settings import Settings
from workers.consumer import Consumer
from workers.context import WorkerContext
from workers.events.fanout import WebhookFanout, delivery_job
from workers.events.handler import EventsHandler, WebhookDeliveryHandler
from workers.events.novu_sync import NovuSync
from workers.events.receipts import ReceiptApplier
from workers.events.sender import WebhookSender
from workers.service import PeriodicService, Service

log = structlog.get_logger(__name__)

_SWEEP_BATCH = 500


class EventsSweep:
    """Re-queues what lost its message: overdue webhook deliveries, unapplied receipts."""

    def __init__(self, *, db: Database, broker: Broker, settings: Settings) -> None:
        self._db = db
        self._broker = broker
        self._grace = timedelta(
            seconds=max(settings.overdue_grace_s, settings.webhook_timeout_s + 5)
        )
        self._receipt_grace = timedelta(seconds=settings.outbox_grace_s)

    async def sweep(self) -> tuple[int, int]:
        """(deliveries, receipts) queued again."""
        now = utcnow()
        overdue = await self._db.webhook_deliveries.take_overdue(
            due_before=now - self._grace, hold_until=now + self._grace, limit=_SWEEP_BATCH
        )
        for d in overdue:
            await self._broker.publish_to_queue(
                queue=self._broker.topology.webhooks_queue,
                body=delivery_job(
                    tenant_id=d["tenant_id"],
                    delivery_id=d["_id"],
                    attempt=int(d.get("attempt_count", 0)) + 1,
                ),
            )
        stale = await self._db.receipts.unapplied_before(
            before=now - self._receipt_grace, limit=_SWEEP_BATCH
        )
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for r in stale:
            by_tenant[r["tenant_id"]].append(r["receipt_id"])
        for tenant_id, ids in by_tenant.items():
            await self._broker.publish_to_queue(
                queue=self._broker.topology.events_queue,
                body={"v": 1, "kind": "receipts", "tenant_id": tenant_id, "receipt_ids": ids},
            )
        if overdue or stale:
            log.info("events_requeued", deliveries=len(overdue), receipts=len(stale))
        return len(overdue), len(stale)


class _ClientOwner:
    """Closes the webhook client when the worker stops (after the consumers)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self, *, timeout_s: float) -> None:
        """Close the client."""
        await self._client.aclose()


def events_services(ctx: WorkerContext) -> list[Service]:
    """`python -m workers events`: two consumers and a sweep."""
    s = ctx.settings
    # Its own client: endpoints that hang must not take the pool Novu calls use.
    webhook_http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        follow_redirects=False,
    )
    events = EventsHandler(
        receipts=ReceiptApplier(db=ctx.db, broker=ctx.broker, events=ctx.webhook_events),
        fanout=WebhookFanout(db=ctx.db, broker=ctx.broker),
        novu=NovuSync(db=ctx.db, broker=ctx.broker, http=ctx.http, settings=s),
    )
    deliveries = WebhookDeliveryHandler(
        WebhookSender(db=ctx.db, broker=ctx.broker, http=webhook_http, settings=s)
    )
    sweep = EventsSweep(db=ctx.db, broker=ctx.broker, settings=s)
    topology = ctx.broker.topology
    return [
        _ClientOwner(webhook_http),  # stopped last (services stop in reverse)
        PeriodicService(name="events_sweep", interval_s=s.maintenance_interval_s, tick=sweep.sweep),
        Consumer(
            broker=ctx.broker,
            queue=topology.events_queue,
            handler=events,
            prefetch=s.events_prefetch,
        ),
        Consumer(
            broker=ctx.broker,
            queue=topology.webhooks_queue,
            handler=deliveries,
            prefetch=s.events_prefetch,
        ),
    ]
