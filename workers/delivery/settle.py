"""Writing a verdict: the record first (final, or RETRYING), the DLQ or the retry message.

Past a provider call the verdict must reach the record, so database and broker hiccups are
retried while the claim's lease still holds. Order per kind:
- dead letter: DLQ publish (confirmed), then the record ends with `dead_lettered_at`; a crash
  in between costs one more attempt and a duplicate dead letter (replay skips it), never a
  lost one;
- retry / wait: the record becomes RETRYING, then the delayed message is published; if that
  publish is lost, the maintenance sweep finds the overdue record and publishes it again;
- defer (quiet hours): the record becomes DELAYED with `deliver_at`, then its message is
  parked until then; a lost publish is the sweep's overdue DELAYED case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from pymongo.errors import ConnectionFailure
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared import metrics
from shared.db.base import utcnow
from shared.db.notifications import NotificationsRepo
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.messaging.dead_letters import dead_letter_headers
from shared.messaging.messages import deliver_message
from shared.pipeline import publish_delivery
from shared.pipeline.publishing import seconds_until
from shared.records import NotificationRecord
from shared.webhooks.events import WebhookEvents, event_for_status, notification_data
from workers.consumer import Handling
from workers.delivery.policy import Verdict, VerdictKind

log = structlog.get_logger(__name__)

_OUTAGES = (BrokerUnavailable, ConnectionFailure)
_T = TypeVar("_T")


class Settler:
    """Records verdicts for one worker of one channel."""

    def __init__(
        self,
        *,
        notifications: NotificationsRepo,
        broker: Broker,
        worker: str,
        events: WebhookEvents | None = None,
    ) -> None:
        self._notifications = notifications
        self._broker = broker
        self._worker = worker
        self._events = events

    async def settle(
        self, record: NotificationRecord, verdict: Verdict, *, deadline_s: float
    ) -> Handling:
        """Write the verdict; ACK once written (or the claim was lost), REQUEUE if it cannot be."""
        repo = self._notifications
        change = verdict.change_to_write()
        try:
            if verdict.kind is VerdictKind.FINAL:
                if verdict.dead_letter:
                    await self._persist(lambda: self._dead_letter(record, verdict), deadline_s)
                    change.dead_lettered_at = utcnow()
                done = await self._persist(
                    lambda: repo.finish(
                        tenant_id=record.tenant_id,
                        notification_id=record.id,
                        worker=self._worker,
                        status=verdict.status,
                        attempts=verdict.attempts,
                        change=change,
                    ),
                    deadline_s,
                )
            elif verdict.kind is VerdictKind.DEFER:
                due = verdict.deliver_at or utcnow() + timedelta(seconds=verdict.delay_s)
                done = await self._persist(
                    lambda: repo.defer(
                        tenant_id=record.tenant_id,
                        notification_id=record.id,
                        worker=self._worker,
                        deliver_at=due,
                        change=change,
                    ),
                    deadline_s,
                )
                if done:
                    await self._persist(
                        lambda: publish_delivery(
                            self._broker,
                            record,
                            attempt=verdict.attempt_count + 1,
                            delay_s=seconds_until(due),
                        ),
                        deadline_s,
                    )
            else:
                next_at = utcnow() + timedelta(seconds=verdict.delay_s)
                done = await self._persist(
                    lambda: repo.retry_later(
                        tenant_id=record.tenant_id,
                        notification_id=record.id,
                        worker=self._worker,
                        next_attempt_at=next_at,
                        attempts=verdict.attempts,
                        change=change,
                    ),
                    deadline_s,
                )
                if done:
                    await self._persist(
                        lambda: publish_delivery(
                            self._broker,
                            record,
                            attempt=verdict.attempt_count + 1,
                            delay_s=verdict.delay_s,
                        ),
                        deadline_s,
                    )
        except _OUTAGES as exc:
            log.warning("verdict_not_recorded", error=str(exc), verdict=verdict.kind.value)
            return Handling.REQUEUE
        if not done:
            log.warning("claim_lost_before_finish", status=verdict.status.value)
            return Handling.ACK
        if verdict.kind is VerdictKind.FINAL and self._events is not None:
            await self._announce(record, verdict, deadline_s)
        last = verdict.attempts[-1] if verdict.attempts else None
        metrics.observe_verdict(
            channel=record.channel.value,
            kind=verdict.kind.value,
            status=verdict.status.value,
            provider=last.provider_type if last else None,
            dead_letter=verdict.dead_letter,
        )
        log.info(
            f"notification_{verdict.status.value.lower()}",
            provider=last.provider if last else None,
            reason=verdict.reason,
            attempts=verdict.attempt_count,
            retry_in_s=verdict.delay_s or None,
            dead_lettered=verdict.dead_letter or None,
            duration_ms=last.duration_ms if last else None,
        )
        return Handling.ACK

    async def _announce(
        self, record: NotificationRecord, verdict: Verdict, deadline_s: float
    ) -> None:
        """The tenant's webhook event for the final status (only if it has endpoints)."""
        events = self._events
        event_type = event_for_status(verdict.status)
        if events is None or event_type is None:
            return
        change = verdict.change
        data = notification_data(
            record,
            status=verdict.status,
            provider=change.provider or record.provider,
            providerMessageId=change.provider_message_id or record.provider_message_id,
            failureReason=verdict.reason,
        )
        try:
            await self._persist(
                lambda: events.emit(
                    tenant_id=record.tenant_id,
                    event_type=event_type,
                    event_id=f"{record.id}:{event_type}",
                    data=data,
                ),
                min(deadline_s, 10.0),
            )
        except _OUTAGES as exc:
            # The status is written; only its announcement is lost (docs/webhooks.md).
            log.warning("webhook_event_lost", event_type=event_type, error=str(exc))

    async def _persist(self, step: Callable[[], Awaitable[_T]], deadline_s: float) -> _T:
        """Run `step`, retrying database and broker outages for up to `deadline_s`."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(deadline_s),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(_OUTAGES),
            reraise=True,
        ):
            with attempt:
                return await step()
        raise AssertionError("unreachable: tenacity reraises")

    async def _dead_letter(self, record: NotificationRecord, verdict: Verdict) -> None:
        count = verdict.attempt_count
        topology = self._broker.topology
        await self._broker.publish(
            exchange=topology.dlx_exchange,
            routing_key=record.channel.value,
            body=deliver_message(
                notification_id=record.id,
                tenant_id=record.tenant_id,
                channel=record.channel.value,
                attempt=count,
            ),
            headers=dead_letter_headers(
                reason=verdict.reason or verdict.status.value.lower(),
                detail=verdict.detail,
                attempts=count,
                original_queue=topology.work_queue(record.channel, record.priority),
                failed_at=datetime.now(UTC),
                tenant_id=record.tenant_id,
                transaction_id=record.transaction_id,
                notification_id=record.id,
                final_status=verdict.status.value,
                correlation_id=record.correlation_id,
            ),
            priority=record.priority,
            message_id=record.id,
            correlation_id=record.correlation_id,
        )
