"""One `deliver` message's fate: claim, decide (content, providers, policy), settle.

The verdict is final (DELIVERED, FAILED, …; failures go to the channel's DLQ as well), a retry
after a backoff, or a wait for a provider circuit to close. Everything is written to the record
before the message is acked (DESIGN.md §7). Idempotent on the notification id: a duplicate or
late message finds the record claimed or final and changes nothing.
"""

from __future__ import annotations

import time

import structlog

from shared.db.base import utcnow
from shared.domain import Channel
from shared.errors import ValidationFailed
from shared.records import NotificationRecord
from workers.circuit import CircuitBreaker
from workers.consumer import Handling, Inbound
from workers.context import WorkerContext
from workers.delivery import policy
from workers.delivery.addresses import DeadAddresses
from workers.delivery.claim import Claims
from workers.delivery.content import ContentRenderer, targets_for
from workers.delivery.dispatch import Dispatcher, route_targets
from workers.delivery.settle import Settler

log = structlog.get_logger(__name__)


class DeliveryHandler:
    """Handles `deliver` messages for one channel."""

    def __init__(self, ctx: WorkerContext, channel: Channel) -> None:
        s = ctx.settings
        self.channel = channel
        self.worker_id = f"{ctx.process_id}:{channel.value}"
        self._ctx = ctx
        self._lease_s = s.worker_lease_s
        self._retry = s.retry_policy(channel)
        self._circuit_max_wait_s = s.circuit_max_wait_s
        self._claims = Claims(
            notifications=ctx.db.notifications,
            broker=ctx.broker,
            worker=self.worker_id,
            lease_s=s.worker_lease_s,
        )
        self._renderer = ContentRenderer(templates=ctx.db.templates, channel=channel)
        self._dispatcher = Dispatcher(
            channel=channel,
            breaker=CircuitBreaker(
                threshold=s.circuit_failure_threshold, cooldown_s=s.circuit_cooldown_s
            ),
            addresses=DeadAddresses(
                channel=channel,
                subscribers=ctx.db.subscribers,
                suppressions=ctx.db.suppressions,
            ),
            worker=self.worker_id,
            circuits=ctx.db.circuits,
        )
        self._settler = Settler(
            notifications=ctx.db.notifications,
            broker=ctx.broker,
            worker=self.worker_id,
            events=ctx.webhook_events,
        )

    async def handle(self, message: Inbound) -> Handling:
        """Deliver the notification the message names; never raises for a provider failure."""
        ids = message.notification_ref()
        if ids is None:
            log.error("message_malformed", body=str(message.body)[:200])
            return Handling.ACK
        tenant_id, notification_id = ids
        record = await self._claims.claim(tenant_id=tenant_id, notification_id=notification_id)
        if record is None:
            await self._claims.park_unclaimed(tenant_id=tenant_id, notification_id=notification_id)
            return Handling.ACK
        claimed_at = time.monotonic()
        try:
            verdict = policy.expire_if_late(record, await self._decide(record), now=utcnow())
        except Exception:
            # Nothing recorded: hand the record back and let the broker redeliver.
            log.exception("delivery_crashed")
            await self._claims.release(record)
            return Handling.REQUEUE
        deadline_s = max(1.0, self._lease_s - (time.monotonic() - claimed_at) - 1.0)
        return await self._settler.settle(record, verdict, deadline_s=deadline_s)

    async def abandon(self, message: Inbound) -> None:
        """Shutdown cut this delivery off: hand its record back so another worker takes it."""
        ids = message.notification_ref()
        if ids is None:
            return
        tenant_id, notification_id = ids
        await self._ctx.db.notifications.release(
            tenant_id=tenant_id, notification_id=notification_id, worker=self.worker_id
        )

    async def _earlier_read(self, record: NotificationRecord) -> bool:
        """For a workflow escalation step only: was the in-app message it escalates read?"""
        step = record.workflow
        if step is None or step.skip_if_read is None:
            return False
        return await self._ctx.db.inbox.was_read(
            tenant_id=record.tenant_id, notification_id=step.skip_if_read
        )

    async def _decide(self, record: NotificationRecord) -> policy.Verdict:
        db = self._ctx.db
        subscriber = await db.subscribers.get(
            tenant_id=record.tenant_id, subscriber_id=record.recipient
        )
        targets = targets_for(self.channel, subscriber) if subscriber is not None else []
        situation = policy.Situation(
            record=record,
            channel=self.channel,
            subscriber=subscriber,
            addresses=len(targets),
            now=utcnow(),
            worker=self.worker_id,
            earlier_read=await self._earlier_read(record),
        )
        verdict = policy.before_sending(situation)
        if verdict is not None:
            return verdict
        providers = await self._ctx.resolver.for_channel(
            tenant_id=record.tenant_id, channel=self.channel, environment=record.environment
        )
        routes = route_targets(targets, providers)
        if not routes:  # no provider at all, or none of the types the addresses belong to
            return policy.no_provider(situation)
        try:
            content = await self._renderer.render(record)
        except ValidationFailed as exc:
            return policy.unrenderable(situation, exc.details)
        dispatch = await self._dispatcher.run(record, routes, content, subscriber)
        if dispatch.last is None:
            return policy.wait_for_circuit(
                record,
                now=utcnow(),
                provider_names=[p.name for p in providers],
                soonest_s=self._dispatcher.soonest_retry_s(record.tenant_id, providers),
                max_wait_s=self._circuit_max_wait_s,
            )
        return policy.judge(record, dispatch.attempts, dispatch.last, policy=self._retry)
