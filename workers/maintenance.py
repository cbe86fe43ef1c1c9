"""The maintenance worker: finds records whose message is missing and publishes them again.

Four cases, each older than a grace period (DESIGN.md §2, §7 rule 1):
- QUEUED with no `enqueued_at`: the API stored the record but its publish was never confirmed
  (it crashed, or the broker failed it and the record could not be discarded);
- PROCESSING with an expired lease: its worker died mid-delivery;
- RETRYING past `next_attempt_at`: the delayed retry message was lost;
- DELAYED / SCHEDULED past `deliver_at`: the parked message was lost.
Each record is taken by a conditional update that stops it matching (so several copies of
this worker never take the same one), turned back into QUEUED, published with a confirm and
stamped `enqueued_at`. A second message for a record is harmless: the worker's claim is the
guard. Whatever fails here is found again on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.domain import Channel, Status
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.messaging.messages import deliver_message
from shared.settings import Settings
from workers.services import connect_services

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
        now = utcnow()
        outbox_before = now - timedelta(seconds=s.outbox_grace_s)
        overdue_before = now - timedelta(seconds=s.overdue_grace_s)
        lock = {"$set": {"sweep_until": now + timedelta(seconds=_SWEEP_LOCK_S), "updated_at": now}}
        requeue = {
            "$set": {
                "status": Status.QUEUED.value,
                "sweep_until": now + timedelta(seconds=_SWEEP_LOCK_S),
                "updated_at": now,
            },
            "$unset": {"lease_until": "", "enqueued_at": "", "worker": "", "next_attempt_at": ""},
            "$inc": {"sweeps": 1},
        }
        expired = await self._take(
            {"status": Status.PROCESSING.value, "lease_until": {"$lt": overdue_before}}, requeue
        )
        retries = await self._take(
            {"status": Status.RETRYING.value, "next_attempt_at": {"$lt": overdue_before}}, requeue
        )
        scheduled = await self._take(
            {
                "status": {"$in": [Status.DELAYED.value, Status.SCHEDULED.value]},
                "deliver_at": {"$lt": overdue_before},
            },
            requeue,
        )
        unpublished = await self._take(
            {
                "status": Status.QUEUED.value,
                "enqueued_at": {"$exists": False},
                "queued_at": {"$lt": outbox_before},
                "sweep_until": {"$not": {"$gte": now}},  # none, or lapsed (no `$or`: see
                # shared/db/notifications.py `_claimable` on SecantusDB and indexes)
            },
            lock,
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

    async def _take(self, query: dict[str, Any], change: dict[str, Any]) -> list[Doc]:
        return await self._db.notifications.take_overdue(
            query=query, change=change, limit=self._settings.maintenance_batch
        )

    async def _republish(self, docs: list[Doc], why: str) -> list[str]:
        done: list[str] = []
        for doc in docs:
            try:
                await self._broker.publish_notification(
                    channel=Channel(doc["channel"]),
                    body=deliver_message(
                        notification_id=doc["_id"],
                        tenant_id=doc["tenant_id"],
                        channel=doc["channel"],
                        attempt=int(doc.get("attempt_count", 0)) + 1,
                    ),
                    priority=int(doc.get("priority", 1)),
                    correlation_id=doc.get("correlation_id"),
                )
            except BrokerUnavailable as exc:
                # Left QUEUED without `enqueued_at`: the next pass after the lock takes it.
                log.warning("republish_failed", notification_id=doc["_id"], error=str(exc))
                continue
            await self._db.notifications.mark_enqueued(
                tenant_id=doc["tenant_id"], notification_ids=[doc["_id"]]
            )
            log.info(
                "notification_republished",
                notification_id=doc["_id"],
                tenant_id=doc["tenant_id"],
                why=why,
            )
            done.append(doc["_id"])
        return done


class MaintenanceWorker:
    """`python -m workers maintenance`: a sweep every `maintenance_interval_s`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None
        self._broker: Broker | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Connect, then sweep until `stop`; a failed pass is logged and tried again."""
        s = self.settings
        self._db, self._broker = await connect_services(s)
        maintenance = Maintenance(db=self._db, broker=self._broker, settings=s)
        log.info("maintenance_started", interval_s=s.maintenance_interval_s)
        try:
            while not self._stopping.is_set():
                try:
                    await maintenance.sweep()
                except Exception as exc:  # an outage: the next pass tries again
                    log.warning("maintenance_pass_failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=s.maintenance_interval_s)
        finally:
            await self._broker.close()
            await self._db.close()
            log.info("maintenance_stopped")

    def stop(self) -> None:
        """Finish the current pass, then return from `run`."""
        self._stopping.set()
