"""Replaying a batch of dead letters, in the order DESIGN.md §7 asks for, per message:

1. conditional update of the record: FAILED / RATE_LIMITED with this `dead_lettered_at`
   → QUEUED (`attempt_count` 0, `replays` + 1, failure fields and claim cleared);
2. publish the original body (`attempt` 1, failure headers dropped, `x-replayed-at`) to the
   original queue through the default exchange, persistent, mandatory, confirmed;
3. `enqueued_at` on the record; 4. ack the DLQ message (the pass commits per batch).

A message whose record is missing or no longer dead-lettered is skipped and left in place.
If the publish fails or is returned, the record is put back as it was (unless a worker
already took it) and the message stays.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractChannel

from shared.db.base import utcnow
from shared.db.client import Database
from shared.dlq.browse import DlqPass
from shared.dlq.model import DeadLetter, replay_body, replay_headers
from shared.dlq.results import Skipped
from shared.domain import Channel, Status
from shared.messaging.topology import Topology
from shared.records import NotificationRecord

_DEAD_LETTERED = {Status.FAILED, Status.RATE_LIMITED}


def record_problem(record: NotificationRecord | None, *, channel: Channel) -> str | None:
    """Why a record cannot be replayed from `channel`'s DLQ now, or None."""
    if record is None:
        return "record_missing"
    if record.channel is not channel:
        return "record_channel_mismatch"
    if record.status not in _DEAD_LETTERED or record.dead_lettered_at is None:
        return "record_not_dead_lettered"
    return None


async def load_records(
    db: Database, letters: list[DeadLetter]
) -> dict[tuple[str, str], NotificationRecord]:
    """The records of `letters`, by (tenant, notification id), one query per tenant."""
    by_tenant: dict[str, list[str]] = {}
    for letter in letters:
        if letter.tenant_id and letter.notification_id:
            by_tenant.setdefault(letter.tenant_id, []).append(letter.notification_id)
    found: dict[tuple[str, str], NotificationRecord] = {}
    for tenant_id, ids in by_tenant.items():
        docs = await db.notifications.get_many(tenant_id=tenant_id, notification_ids=ids)
        found.update({(tenant_id, nid): doc for nid, doc in docs.items()})
    return found


class Replayer:
    """Replays batches of dead letters into their original queues."""

    def __init__(self, *, db: Database, topology: Topology, timeout_s: float) -> None:
        self._db = db
        self._topology = topology
        self._timeout_s = timeout_s

    async def replay_batch(
        self,
        dlq_pass: DlqPass,
        batch: list[DeadLetter],
        publisher: AbstractChannel | None,
        dry_run: bool,
    ) -> tuple[list[DeadLetter], list[Skipped]]:
        records = await load_records(self._db, batch)
        eligible: list[tuple[DeadLetter, NotificationRecord]] = []
        skipped: list[Skipped] = []
        for letter in batch:
            record = records.get((letter.tenant_id, letter.notification_id))
            reason = (
                letter.problem
                or self._queue_problem(letter)
                or record_problem(record, channel=letter.channel)
            )
            if reason is not None or record is None:
                skipped.append(Skipped(letter=letter, reason=reason or "record_missing"))
            else:
                eligible.append((letter, record))
        if dry_run or not eligible:
            return [letter for letter, _ in eligible], skipped
        assert publisher is not None
        replayed_at = utcnow()
        outcomes = await asyncio.gather(
            *(
                self._replay_one(letter, record, publisher, replayed_at)
                for letter, record in eligible
            ),
            return_exceptions=True,
        )
        done: list[DeadLetter] = []
        failure: BaseException | None = None
        for (letter, _), outcome in zip(eligible, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            elif outcome is None:
                done.append(letter)
            else:
                skipped.append(Skipped(letter=letter, reason=outcome))
        by_tenant: dict[str, list[str]] = {}
        for letter in done:
            by_tenant.setdefault(letter.tenant_id, []).append(letter.notification_id)
        for tenant_id, ids in by_tenant.items():
            await self._db.notifications.mark_enqueued(tenant_id=tenant_id, notification_ids=ids)
        for letter in done:
            await dlq_pass.remove(letter)
        if failure is not None:
            await dlq_pass.commit()  # what was replayed leaves the DLQ before we give up
            raise failure
        return done, skipped

    async def _replay_one(
        self,
        letter: DeadLetter,
        record: NotificationRecord,
        publisher: AbstractChannel,
        replayed_at: datetime,
    ) -> str | None:
        """Replay one message; None when done, else why it was skipped."""
        repo = self._db.notifications
        assert record.dead_lettered_at is not None  # record_problem checked it
        taken = await repo.requeue_dead_lettered(
            tenant_id=letter.tenant_id,
            notification_id=letter.notification_id,
            dead_lettered_at=record.dead_lettered_at,
            replayed_at=replayed_at,
        )
        if not taken:
            return "record_changed"
        try:
            routed = await self._publish(publisher, letter, replayed_at)
        except Exception:
            await repo.restore_dead_lettered(
                tenant_id=letter.tenant_id,
                notification_id=letter.notification_id,
                previous=record,
                replayed_at=replayed_at,
            )
            raise
        if routed:
            return None
        await repo.restore_dead_lettered(
            tenant_id=letter.tenant_id,
            notification_id=letter.notification_id,
            previous=record,
            replayed_at=replayed_at,
        )
        return "original_queue_missing"

    async def _publish(
        self, publisher: AbstractChannel, letter: DeadLetter, replayed_at: datetime
    ) -> bool:
        """Publish to the original queue; False when the broker returned it (no such queue)."""
        message = aio_pika.Message(
            body=orjson.dumps(replay_body(letter)),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=letter.priority,
            message_id=letter.notification_id,
            correlation_id=letter.correlation_id,
            headers=replay_headers(letter, replayed_at=replayed_at),
        )
        async with asyncio.timeout(self._timeout_s):
            confirmation = await publisher.default_exchange.publish(
                message, routing_key=self._target_queue(letter), mandatory=True
            )
        return isinstance(confirmation, aiormq.spec.Basic.Ack)

    def _target_queue(self, letter: DeadLetter) -> str:
        t, channel = self._topology, letter.channel
        original = letter.info.original_queue or t.queue(channel)
        if original == t.high_queue(channel) and not t.quorum:
            return t.queue(channel)  # quorum queues were switched off since: no high queue now
        return original

    def _queue_problem(self, letter: DeadLetter) -> str | None:
        # Only a work queue of the DLQ's own channel: a header naming anything else (another
        # channel, another deployment's prefix) must not route a message there.
        if self._target_queue(letter) not in self._topology.work_queues(letter.channel):
            return "unknown_original_queue"
        return None
