"""The maintenance worker: finds records whose message is missing and publishes them again.

Four cases, each older than a grace period (DESIGN.md §2, §7 rule 1):
- QUEUED, untouched for `NOTIFY_OUTBOX_GRACE_S`, on a channel whose queues hold no message:
  the API stored the record but its publish was never confirmed (it crashed, or the broker
  failed it and the record could not be discarded), or its message was lost; with the queue
  empty nothing ahead of it is left to deliver it. (A send writes no `enqueued_at` stamp: this
  rule makes it unnecessary, and a backlog never makes the sweep publish what is waiting.)
- PROCESSING with an expired lease: its worker died mid-delivery;
- RETRYING past `next_attempt_at`: the delayed retry message was lost;
- DELAYED / SCHEDULED past `deliver_at`: the parked message was lost.
Each record is taken by a conditional update that stops it matching (so several copies of
this worker never take the same one) that also locks it for a while (`sweep_until`), turned
back into QUEUED and published with a confirm. A second message for a record is harmless: the
worker's claim is the guard. Whatever fails here is found again once the lock lapses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta

import structlog

from shared.db.base import utcnow
from shared.db.client import Database
from shared.domain import Channel
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.pipeline import publish_delivery
from shared.records import NotificationRecord
from shared.settings import Settings
from workers.context import WorkerContext
from workers.service import PeriodicService, Service

log = structlog.get_logger(__name__)

_SWEEP_LOCK_S = 60  # a taken record is left alone this long, publish or not


@dataclass(frozen=True, slots=True)
class SweepReport:
    """The notification ids one pass re-published, per case."""

    unpublished: list[str] = field(default_factory=list)
    expired_leases: list[str] = field(default_factory=list)
    overdue_retries: list[str] = field(default_factory=list)
    overdue_scheduled: list[str] = field(default_factory=list)

    def all_ids(self) -> list[str]:
        """Every id re-published in the pass."""
        return (
            self.unpublished + self.expired_leases + self.overdue_retries + self.overdue_scheduled
        )

    def counts(self) -> dict[str, int]:
        """How many per case."""
        return {case: len(ids) for case, ids in asdict(self).items()}


class Maintenance:
    """One pass at a time; safe to run as several copies."""

    def __init__(self, *, db: Database, broker: Broker, settings: Settings) -> None:
        self._db = db
        self._broker = broker
        self._settings = settings

    async def sweep(self) -> SweepReport:
        """Run every case once."""
        s = self._settings
        repo = self._db.notifications
        now = utcnow()
        overdue_before = now - timedelta(seconds=s.overdue_grace_s)
        lock_until = now + timedelta(seconds=_SWEEP_LOCK_S)
        limit = s.maintenance_batch
        expired = await repo.requeue_expired_leases(
            expired_before=overdue_before, lock_until=lock_until, limit=limit
        )
        retries = await repo.requeue_overdue_retries(
            due_before=overdue_before, lock_until=lock_until, limit=limit
        )
        scheduled = await repo.requeue_overdue_scheduled(
            due_before=overdue_before, lock_until=lock_until, limit=limit
        )
        unpublished = await repo.lock_unpublished(
            untouched_since=now - timedelta(seconds=s.outbox_grace_s),
            channels=await self._idle_channels(),
            lock_until=lock_until,
            limit=limit,
        )
        report = SweepReport(
            unpublished=await self._republish(unpublished, "unpublished"),
            expired_leases=await self._republish(expired, "lease_expired"),
            overdue_retries=await self._republish(retries, "retry_overdue"),
            overdue_scheduled=await self._republish(scheduled, "schedule_overdue"),
        )
        if report.all_ids():
            log.info("maintenance_republished", **report.counts())
        return report

    async def _idle_channels(self) -> list[str]:
        """Channels whose work queues hold no ready message (a queue the broker cannot answer
        for counts as busy: its records wait for the next pass)."""
        topology = self._broker.topology
        queues = {c: topology.work_queues(c) for c in Channel}
        ready = await self._broker.ready_messages([q for names in queues.values() for q in names])
        return [c.value for c, names in queues.items() if all(ready[q] == 0 for q in names)]

    async def _republish(self, records: list[NotificationRecord], why: str) -> list[str]:
        done: list[str] = []
        for record in records:
            try:
                # Now, whatever `deliver_at` said: the record is overdue.
                await publish_delivery(self._broker, record, delay_s=0)
            except BrokerUnavailable as exc:
                # Left QUEUED and locked: the first pass after the lock takes it again.
                log.warning("republish_failed", notification_id=record.id, error=str(exc))
                continue
            log.info(
                "notification_republished",
                notification_id=record.id,
                tenant_id=record.tenant_id,
                why=why,
            )
            done.append(record.id)
        return done


def maintenance_services(ctx: WorkerContext) -> list[Service]:
    """`python -m workers maintenance`: a sweep every `maintenance_interval_s`."""
    maintenance = Maintenance(db=ctx.db, broker=ctx.broker, settings=ctx.settings)
    return [
        PeriodicService(
            name="maintenance",
            interval_s=ctx.settings.maintenance_interval_s,
            tick=maintenance.sweep,
        )
    ]
