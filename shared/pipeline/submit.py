"""Store, then publish with a confirm (DESIGN.md §7 rule 1), with the API's 503 semantics.

1. The record is written first, so an acknowledged request is never lost.
2. Its message is published persistently and confirmed by the broker; then the caller answers.
   Nothing more is written: a QUEUED record that no worker has touched for the outbox grace
   while its channel's queue is empty is published again by the maintenance sweep (its
   message was never published, or was lost), and the worker's claim makes a second message
   harmless. (Until issue 16 an `enqueued_at` stamp marked the confirm: one more document
   write per notification, a quarter of the database's work on the single path.)
If the broker does not confirm, the unconfirmed records are deleted (unless a worker already
took them) and `BrokerUnavailable` is raised: the caller answers 503, meaning "not sent", so a
retry with the same idempotency key sends afresh and nothing goes out behind its back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from shared import metrics
from shared.db.base import Doc
from shared.db.client import Database
from shared.db.notifications.documents import INITIAL
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.pipeline.fanout import submit_fanout
from shared.pipeline.publishing import publish_delivery
from shared.records import NotificationRecord

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineHooks:
    """Test-harness hooks; production passes none.

    `after_store` runs between the record write and the publish: the fault tests install one
    that kills the process there (`tests/faults/failpoint_api.py`).
    """

    after_store: Callable[[], None] | None = None


def _needs_publish(record: NotificationRecord, created: bool) -> bool:
    # A record stored by an earlier call and not yet taken by a worker is published again
    # now (its first publish may never have been confirmed): the status guard in the worker
    # makes a second message harmless. A record
    # created already final (decided before any delivery, e.g. a workflow step its channel
    # default turned off) is only stored: there is nothing to deliver.
    return record.status in INITIAL and (created or not record.is_published)


class SendPipeline:
    """Stores records and publishes their messages; one per process, shared by producers."""

    def __init__(self, *, db: Database, broker: Broker, hooks: PipelineHooks | None = None) -> None:
        self._db = db
        self._broker = broker
        self._hooks = hooks or PipelineHooks()

    async def submit_one(self, record: NotificationRecord) -> tuple[NotificationRecord, bool]:
        """Store and publish one record; the stored record and whether it is new."""
        stored, created = await self._db.notifications.insert(record)
        if created:
            metrics.count_created([stored])
        self._after_store()
        if _needs_publish(stored, created):
            await self._publish([stored])
        return stored, created

    async def submit_many(self, records: list[NotificationRecord]) -> list[NotificationRecord]:
        """Store a batch in one write and publish it with pipelined confirms.

        Records of one batch belong to one tenant. A record whose idempotency key was used
        before comes back as the stored one and is not sent again.
        """
        stored = await self._db.notifications.insert_many(records)
        new_ids = {r.id for r in records}
        metrics.count_created(r for r in stored if r.id in new_ids)
        self._after_store()
        pending = [r for r in stored if _needs_publish(r, r.id in new_ids)]
        if pending:
            await self._publish(pending)
        return stored

    async def submit_fanout(self, fanout: Doc) -> tuple[Doc, bool]:
        """Store a topic send's fan-out and publish its message (`shared/pipeline/fanout.py`);
        the stored fan-out and whether it is new."""
        return await submit_fanout(self._db, self._broker, fanout, after_store=self._after_store)

    async def _publish(self, records: list[NotificationRecord]) -> None:
        results = await asyncio.gather(
            *(publish_delivery(self._broker, r) for r in records), return_exceptions=True
        )
        confirmed = [r.id for r, res in zip(records, results, strict=True) if res is None]
        failures = [res for res in results if isinstance(res, BaseException)]
        if not failures:
            return
        unconfirmed = [r.id for r, res in zip(records, results, strict=True) if res is not None]
        discarded = await self._discard(records[0].tenant_id, unconfirmed)
        log.warning(
            "publish_unconfirmed",
            unconfirmed=len(failures),
            confirmed=len(confirmed),
            discarded=discarded,
            reason=str(failures[0]),
        )
        first = failures[0]
        if isinstance(first, BrokerUnavailable):
            raise first
        raise BrokerUnavailable(f"publish failed: {first!r}") from first

    async def _discard(self, tenant_id: str, notification_ids: list[str]) -> int | None:
        """Best effort: if the database is down too, the sweep sends them later instead."""
        try:
            return await self._db.notifications.discard_unpublished(
                tenant_id=tenant_id, notification_ids=notification_ids
            )
        except Exception as exc:
            log.warning("discard_failed", error=repr(exc))
            return None

    def _after_store(self) -> None:
        if self._hooks.after_store is not None:
            self._hooks.after_store()
