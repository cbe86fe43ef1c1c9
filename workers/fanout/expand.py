"""Expanding one fan-out, window by window, so that a crash anywhere skips no one and sends to
no one twice:

1. The fan-out is claimed under a lease (`shared/db/fanouts.py`); the claim returns its
   `cursor`, the last subscription number (`seq`, `shared/db/topics.py`) whose window is done
   (0 at first).
2. The subscriptions numbered cursor+1 .. cursor+`fanout_batch` are read (only their ids: the
   audience is never in memory), the excluded users dropped.
3. Their records go through the send pipeline in one `insert_many` and pipelined confirms;
   each record's idempotency key is `topic:<transaction>:<subscriber>`, so a window done again
   after a crash stores nothing new and publishes only what was never confirmed (the channel
   worker's claim makes a second message for a record harmless).
4. The cursor moves past the window, the window's counts are added and the lease renewed, in
   one conditional update that names this claim: a worker that lost its claim stops there.
5. Past the topic's highest number, the worker reads it again: subscribers added meanwhile
   are sent to as well; when nothing new is left, the fan-out is DONE.
So a subscriber added while a fan-out runs is included when the fan-out has not yet finished
(their number is above the cursor: numbers only grow); one removed before the cursor reaches
them is not.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from shared import metrics
from shared.db.base import Doc
from shared.db.client import Database
from shared.domain import Channel
from shared.pipeline import SendPipeline
from shared.records import Content, NotificationRecord
from shared.settings import Settings
from shared.workflow_runs import Trigger, Workflow, records_for, render_steps

log = structlog.get_logger(__name__)

SOURCE = "manage.send-to-topic"


@dataclass(frozen=True, slots=True)
class FanoutHooks:
    """Test-harness hooks (the fault tests kill the process there); production passes none.

    `after_batch(n)` runs after batch `n` (1-based, of this claim) was stored and published
    and before the cursor moves past it: the worst moment to die. It may be a coroutine
    function (a test then changes the topic right there).
    """

    after_batch: Callable[[int], Awaitable[None] | None] | None = None


class RecordMaker(Protocol):
    """The records of one page of recipients."""

    async def records(self, users: list[str]) -> list[NotificationRecord]:
        """One or more records per user."""
        ...


def recipient_key(transaction_id: str, subscriber_id: str) -> str:
    """The idempotency key of one recipient's record of a topic send."""
    return f"topic:{transaction_id}:{subscriber_id}"


@dataclass(frozen=True, slots=True)
class ContentRecords:
    """`manage/send-to-topic`: the same content for every subscriber."""

    doc: Doc

    async def records(self, users: list[str]) -> list[NotificationRecord]:
        """One record per user."""
        d = self.doc
        content = Content.model_validate(d["content"])
        return [
            NotificationRecord.new(
                tenant_id=d["tenant_id"],
                channel=Channel(d["channel"]),
                recipient=user,
                source=SOURCE,
                transaction_id=d["_id"],
                category=d["category"],
                priority=int(d.get("priority") or 1),
                correlation_id=d.get("correlation_id"),
                content=content,
                idempotency_key=recipient_key(d["_id"], user),
                environment=d["environment"],
            )
            for user in users
        ]


class WorkflowRecords:
    """`manage/trigger` with `topicKey`: every step of the workflow version the trigger named,
    rendered once with its payload, for each subscriber."""

    def __init__(self, *, db: Database, doc: Doc, workflow_doc: Doc) -> None:
        self._db = db
        self._doc = doc
        self._workflow = Workflow.from_document(workflow_doc)
        self._payload: dict[str, Any] = doc["workflow"].get("payload") or {}
        self._contents = render_steps(self._workflow, self._payload)

    async def records(self, users: list[str]) -> list[NotificationRecord]:
        """Every step of every user; keys per (transaction, user, step)."""
        d, definition = self._doc, self._workflow.definition
        subscribers: dict[str, Doc] = {}
        if not definition.critical and not all(
            definition.channel_on_by_default(s.channel) for s in definition.steps
        ):
            subscribers = await self._db.subscribers.get_many(
                tenant_id=d["tenant_id"], subscriber_ids=users
            )
        return records_for(
            self._workflow,
            Trigger(
                tenant_id=d["tenant_id"],
                environment=d["environment"],
                transaction_id=d["_id"],
                payload=self._payload,
                idempotency_key=d["_id"],
                correlation_id=d.get("correlation_id"),
            ),
            users=users,
            subscribers=subscribers,
            contents=self._contents,
        )


class FanoutExpander:
    """Runs fan-outs; safe as several copies, and twice on one fan-out."""

    def __init__(
        self,
        *,
        db: Database,
        pipeline: SendPipeline,
        settings: Settings,
        hooks: FanoutHooks | None = None,
    ) -> None:
        self._db = db
        self._pipeline = pipeline
        self._batch = settings.fanout_batch
        self._lease_s = settings.fanout_lease_s
        self._hooks = hooks or FanoutHooks()

    async def _maker(self, doc: Doc) -> RecordMaker | None:
        trigger = doc.get("workflow")
        if trigger is None:
            return ContentRecords(doc)
        workflow_doc = await self._db.workflows.version(
            tenant_id=doc["tenant_id"],
            environment=doc["environment"],
            workflow_id=trigger["workflow_id"],
            version=int(trigger["version"]),
        )
        return (
            None
            if workflow_doc is None
            else WorkflowRecords(db=self._db, doc=doc, workflow_doc=workflow_doc)
        )

    async def run(self, *, tenant_id: str, fanout_id: str, claim: str, take_over: bool) -> None:
        """Claim the fan-out and expand what remains of it; raises on an outage (the caller
        gives the message back, the next run continues from the cursor)."""
        fanouts = self._db.fanouts
        doc = await fanouts.claim(
            tenant_id=tenant_id,
            fanout_id=fanout_id,
            worker=claim,
            lease_s=self._lease_s,
            take_over=take_over,
        )
        if doc is None:
            log.info("fanout_not_claimed", fanout_id=fanout_id)  # done, gone, or running
            return
        maker = await self._maker(doc)
        if maker is None:
            log.error("fanout_workflow_missing", fanout_id=fanout_id)
            await fanouts.finish(tenant_id=tenant_id, fanout_id=fanout_id, worker=claim)
            return
        excluded = set(doc.get("exclude") or [])
        topic_id = doc["topic_id"]
        cursor = int(doc.get("cursor") or 0)
        high = await self._db.topics.last_seq(tenant_id=tenant_id, topic_id=topic_id)
        high = int(doc.get("seq_high", 0)) if high is None else high
        channel = str(doc.get("channel") or "workflow")
        batches = 0
        while True:
            if cursor >= high:
                # Caught up: subscriptions numbered since (added during the fan-out) still go.
                latest = await self._db.topics.last_seq(tenant_id=tenant_id, topic_id=topic_id)
                if latest is None or latest <= cursor:
                    break
                high = latest
            page = await self._db.topic_subscriptions.window(
                tenant_id=tenant_id, topic_id=topic_id, after=cursor, span=self._batch
            )
            users = [s["subscriber_id"] for s in page if s["subscriber_id"] not in excluded]
            if users:
                records = await maker.records(users)
                made = {r.id for r in records}
                stored = await self._pipeline.submit_many(records)
                metrics.count_fanout(channel=channel, recipients=sum(r.id in made for r in stored))
            batches += 1
            if self._hooks.after_batch is not None:
                hooked = self._hooks.after_batch(batches)
                if inspect.isawaitable(hooked):
                    await hooked
            cursor += self._batch
            if not await fanouts.advance(
                tenant_id=tenant_id,
                fanout_id=fanout_id,
                worker=claim,
                cursor=cursor,
                recipients=len(users),
                excluded=len(page) - len(users),
                lease_s=self._lease_s,
            ):
                log.warning("fanout_claim_lost", fanout_id=fanout_id, batches=batches)
                return
        if await fanouts.finish(tenant_id=tenant_id, fanout_id=fanout_id, worker=claim):
            log.info("fanout_done", fanout_id=fanout_id, tenant_id=tenant_id, batches=batches)
            await self._collect_deleted_topic(tenant_id, topic_id)

    async def _collect_deleted_topic(self, tenant_id: str, topic_id: str) -> None:
        """`delete-topic` leaves a topic's subscriptions to its last running fan-out: remove
        them once the topic is gone and no fan-out of it is left."""
        if await self._db.topics.exists_by_id(tenant_id=tenant_id, topic_id=topic_id):
            return
        if await self._db.fanouts.active_for_topic(tenant_id=tenant_id, topic_id=topic_id):
            return
        removed = await self._db.topic_subscriptions.delete_topic(
            tenant_id=tenant_id, topic_id=topic_id
        )
        log.info("deleted_topic_subscriptions_removed", topic_id=topic_id, removed=removed)

    async def release(self, *, tenant_id: str, fanout_id: str, claim: str) -> None:
        """Give the claim up so the next delivery of the message continues at once."""
        await self._db.fanouts.release(tenant_id=tenant_id, fanout_id=fanout_id, worker=claim)
