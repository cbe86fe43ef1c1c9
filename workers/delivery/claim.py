"""Claiming a record before delivering it, and what to do with a message that cannot claim."""

from __future__ import annotations

import structlog

from shared.db.notifications import NotificationsRepo
from shared.domain import Status
from shared.messaging.broker import Broker
from shared.pipeline import publish_delivery
from shared.pipeline.publishing import seconds_until
from shared.records import NotificationRecord

log = structlog.get_logger(__name__)


class Claims:
    """One worker's claims: a conditional update with a lease, so only one worker delivers."""

    def __init__(
        self, *, notifications: NotificationsRepo, broker: Broker, worker: str, lease_s: int
    ) -> None:
        self._notifications = notifications
        self._broker = broker
        self._worker = worker
        self._lease_s = lease_s

    async def claim(self, *, tenant_id: str, notification_id: str) -> NotificationRecord | None:
        """The record, now PROCESSING under our lease; None if it cannot be claimed now."""
        return await self._notifications.claim_and_get(
            tenant_id=tenant_id,
            notification_id=notification_id,
            worker=self._worker,
            lease_s=self._lease_s,
        )

    async def release(self, record: NotificationRecord) -> None:
        """Hand the record back (PROCESSING → QUEUED) for a message the broker redelivers."""
        await self._notifications.release(
            tenant_id=record.tenant_id, notification_id=record.id, worker=self._worker
        )

    async def park_unclaimed(self, *, tenant_id: str, notification_id: str) -> None:
        """A message whose record could not be claimed: park it for later, or drop it.

        A live lease of another worker (which may have died), a retry time or a delivery time
        still ahead: the message waits in the delay levels until then. A final or missing
        record: dropped, which the caller does by acking.
        """
        record = await self._notifications.get(tenant_id=tenant_id, notification_id=notification_id)
        if record is None:
            log.warning("notification_missing")
            return
        not_before = None
        if record.status is Status.PROCESSING:
            not_before = record.lease_until  # held by a worker that may have died
        elif record.status is Status.RETRYING:
            not_before = record.next_attempt_at  # this message came early
        elif record.status in (Status.DELAYED, Status.SCHEDULED):
            not_before = record.deliver_at  # not due yet
        if not_before is None:
            log.info("notification_skipped", status=record.status.value)
            return
        wait_s = max(1, seconds_until(not_before))
        await publish_delivery(self._broker, record, delay_s=wait_s)
        log.info("notification_parked", status=record.status.value, retry_in_s=wait_s)
