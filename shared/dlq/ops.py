"""Dead-letter operations (list, show, replay, purge, history): one implementation for the API
and `notifyctl`, straight against RabbitMQ and MongoDB.

Every operation opens its own broker connection and reads each selected channel's DLQ in one
locked pass (`shared/dlq/browse.py`); messages it does not take stay where they were, in
order. Replay moves a record back to QUEUED, publishes to the original queue, stamps
`enqueued_at`, then acks (`shared/dlq/replay.py`). A message whose record is missing or no
longer dead-lettered (already replayed, delivered, cancelled…) is skipped and left in place:
the record is the source of truth, so only an operator's purge removes such a message.
Purge removes messages and leaves the records as they are. Every replay and purge, dry runs
included, is recorded in `dead_letter_operations`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.dlq.browse import DlqPass, connect, open_pass
from shared.dlq.model import DeadLetter, DeadLetterFilter
from shared.dlq.replay import Replayer, load_records
from shared.dlq.results import (
    Action,
    Detail,
    Listing,
    OperationResult,
    Progress,
    ProgressFn,
    Skipped,
)
from shared.domain import Channel
from shared.errors import BrokerUnavailable, NotifyError, ValidationFailed
from shared.ids import new_id
from shared.messaging.broker import BROKER_ERRORS
from shared.messaging.topology import Topology
from shared.records import NotificationRecord

log = structlog.get_logger(__name__)

_BATCH = 100


_BatchFn = Callable[
    [DlqPass, list[DeadLetter], AbstractChannel | None, bool],
    Awaitable[tuple[list[DeadLetter], list[Skipped]]],
]


def check_selection(*, filters: DeadLetterFilter, limit: int | None, all_matching: bool) -> None:
    """A replay or purge must say what it takes, so nothing moves everything by accident."""
    errors: list[str] = []
    if limit is not None and limit < 1:
        errors.append("limit must not be less than 1")
    if all_matching and limit is not None:
        errors.append("all and limit cannot be combined")
    if not (all_matching or limit is not None or filters.names_messages):
        errors.append("say what to take: transaction or notification ids, a limit, or all")
    if errors:
        raise ValidationFailed(errors)


class DeadLetters:
    """Operations on the channels' DLQs; build one per use (it holds no connection)."""

    def __init__(
        self,
        *,
        db: Database,
        amqp_url: str,
        topology: Topology,
        timeout_s: float = 5.0,
        window: int = 10_000,
        lock_wait_s: float = 10.0,
    ) -> None:
        self._db = db
        self._url = amqp_url
        self._topology = topology
        self._timeout_s = timeout_s
        self._window = window
        self._lock_wait_s = lock_wait_s

    # --- reading --------------------------------------------------------------------------

    async def list_dead_letters(self, *, filters: DeadLetterFilter, limit: int = 100) -> Listing:
        """The first `limit` matching messages in queue order (channel by channel)."""
        letters: list[DeadLetter] = []
        scanned = depth = 0
        has_more = False
        async with self._broker() as connection:
            for channel in filters.ordered_channels:
                async with self._pass(connection, channel) as dlq_pass:
                    depth += dlq_pass.depth
                    while (letter := await dlq_pass.next()) is not None:
                        if not filters.matches(letter):
                            continue
                        if len(letters) == limit:
                            has_more = True
                            break
                        letters.append(letter)
                    scanned += dlq_pass.scanned
                    has_more |= dlq_pass.truncated
                if has_more and len(letters) == limit:
                    break
        records = await self._records(letters)
        return Listing(
            letters=letters,
            record_status={
                letter.notification_id: record.status.value
                for letter in letters
                if (record := records.get((letter.tenant_id, letter.notification_id)))
            },
            scanned=scanned,
            depth=depth,
            has_more=has_more,
        )

    async def get_dead_letters(
        self,
        *,
        tenant_id: str | None,
        notification_id: str | None = None,
        transaction_id: str | None = None,
    ) -> list[Detail]:
        """Every dead letter of one notification or one transaction, with its record."""
        if (notification_id is None) == (transaction_id is None):
            raise ValidationFailed(["give exactly one of a notification id or a transaction id"])
        filters = DeadLetterFilter(
            tenant_id=tenant_id,
            notification_ids=frozenset([notification_id] if notification_id else []),
            transaction_ids=frozenset([transaction_id] if transaction_id else []),
        )
        listing = await self.list_dead_letters(filters=filters, limit=1000)
        records = await self._records(listing.letters)
        return [
            Detail(letter=letter, record=records.get((letter.tenant_id, letter.notification_id)))
            for letter in listing.letters
        ]

    async def list_operations(
        self, *, tenant_id: str | None, action: Action | None = None, limit: int = 50
    ) -> list[Doc]:
        """The audit trail, newest first: one tenant's, or (None) every operation."""
        return await self._db.dead_letter_operations.list_recent(
            tenant_id=tenant_id, action=action, limit=limit
        )

    # --- changing ---------------------------------------------------------------------------

    async def change_dead_letters(
        self,
        *,
        action: Action,
        filters: DeadLetterFilter,
        actor: str,
        limit: int | None = None,
        all_matching: bool = False,
        dry_run: bool = False,
        correlation_id: str | None = None,
        on_progress: ProgressFn | None = None,
    ) -> OperationResult:
        """Replay or purge the matching messages (see the module docstring).

        Replay sends them back to their original queue; purge removes them and leaves their
        records as they are. `limit` counts messages replayed or purged: skipped ones are
        reported and do not use it up.
        """
        check_selection(filters=filters, limit=limit, all_matching=all_matching)
        batch_fn: _BatchFn = (
            Replayer(db=self._db, topology=self._topology, timeout_s=self._timeout_s).replay_batch
            if action == "replay"
            else self._purge_batch
        )
        result = OperationResult(
            operation_id=new_id("dlo"),
            action=action,
            dry_run=dry_run,
            filters=filters,
            limit=limit,
            all_matching=all_matching,
            actor=actor,
            correlation_id=correlation_id,
            started_at=utcnow(),
        )
        clock = time.perf_counter()
        try:
            async with self._broker() as connection:
                publisher = None
                if action == "replay" and not dry_run:
                    publisher = await connection.channel(publisher_confirms=True)
                for channel in filters.ordered_channels:
                    if limit is not None and len(result.affected) >= limit:
                        result.has_more = True
                        break
                    async with self._pass(connection, channel) as dlq_pass:
                        await self._change_queue(dlq_pass, publisher, batch_fn, result, on_progress)
        except Exception as exc:
            result.error = (
                exc.message if isinstance(exc, NotifyError) else f"{type(exc).__name__}: {exc}"
            )
            try:
                await self._db.dead_letter_operations.record(
                    result.audit_doc(duration_ms=(time.perf_counter() - clock) * 1000)
                )
            except Exception as audit_exc:  # the operation's own error is the one to report
                log.error("dead_letter_audit_failed", error=repr(audit_exc))
            if isinstance(exc, BrokerUnavailable) and result.affected and not dry_run:
                done = "replayed" if action == "replay" else "purged"
                raise BrokerUnavailable(
                    f"{exc.message}; {len(result.affected)} message(s) were {done} before it "
                    f"(operation {result.operation_id})"
                ) from exc
            raise
        await self._db.dead_letter_operations.record(
            result.audit_doc(duration_ms=(time.perf_counter() - clock) * 1000)
        )
        log.info(
            f"dead_letters_{action}_done",
            operation_id=result.operation_id,
            dry_run=dry_run,
            affected=len(result.affected),
            skipped=len(result.skipped),
            actor=actor,
        )
        return result

    async def _change_queue(
        self,
        dlq_pass: DlqPass,
        publisher: AbstractChannel | None,
        batch_fn: _BatchFn,
        result: OperationResult,
        on_progress: ProgressFn | None,
    ) -> None:
        """Read one DLQ, applying `batch_fn` to each batch of selected messages."""
        filters, limit, dry_run = result.filters, result.limit, result.dry_run
        batch: list[DeadLetter] = []

        async def flush() -> None:
            done, skipped = await batch_fn(dlq_pass, batch, publisher, dry_run)
            result.affected += done
            result.skipped += skipped
            batch.clear()
            await dlq_pass.commit()

        while True:
            letter = await dlq_pass.next()
            if letter is not None and filters.matches(letter):
                batch.append(letter)
                result.matched += 1
            room = None if limit is None else limit - len(result.affected)
            if batch and (letter is None or len(batch) >= min(_BATCH, room or _BATCH)):
                await flush()
                room = None if limit is None else limit - len(result.affected)
            if on_progress is not None and (letter is None or dlq_pass.scanned % 50 == 0):
                on_progress(
                    Progress(
                        queue=dlq_pass.queue,
                        scanned=dlq_pass.scanned,
                        total=dlq_pass.total,
                        affected=len(result.affected),
                    )
                )
            if letter is None:
                break
            if room is not None and room <= 0:
                result.has_more = True
                break
        result.scanned += dlq_pass.scanned
        result.has_more |= dlq_pass.truncated

    async def _purge_batch(
        self,
        dlq_pass: DlqPass,
        batch: list[DeadLetter],
        publisher: AbstractChannel | None,
        dry_run: bool,
    ) -> tuple[list[DeadLetter], list[Skipped]]:
        if not dry_run:
            for letter in batch:
                await dlq_pass.remove(letter)
        return list(batch), []

    # --- helpers ----------------------------------------------------------------------------

    async def _records(
        self, letters: list[DeadLetter]
    ) -> dict[tuple[str, str], NotificationRecord]:
        return await load_records(self._db, letters)

    @asynccontextmanager
    async def _broker(self) -> AsyncIterator[AbstractConnection]:
        async with connect(self._url, timeout_s=self._timeout_s) as connection:
            try:
                yield connection
            except BROKER_ERRORS as exc:
                if isinstance(exc, NotifyError):
                    raise
                raise BrokerUnavailable(
                    f"RabbitMQ failed during a dead-letter operation: {type(exc).__name__}"
                ) from exc

    def _pass(
        self, connection: AbstractConnection, channel: Channel
    ) -> AbstractAsyncContextManager[DlqPass]:
        return open_pass(
            connection=connection,
            topology=self._topology,
            channel=channel,
            timeout_s=self._timeout_s,
            window=self._window,
            lock_wait_s=self._lock_wait_s,
        )
