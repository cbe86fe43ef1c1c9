"""Write the record, publish with a confirm, then answer (DESIGN.md §7 rule 1)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import structlog
from pymongo.errors import PyMongoError

from api.context import AppContext
from shared.db.base import Doc, utcnow
from shared.domain import Channel, Status
from shared.errors import BrokerUnavailable
from shared.ids import new_id
from shared.messaging.messages import deliver_message_for

log = structlog.get_logger(__name__)


def new_record(
    *,
    tenant_id: str,
    channel: Channel,
    recipient: str,
    category: str,
    priority: int,
    transaction_id: str,
    correlation_id: str | None,
    source: str,
    content: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    notification_id: str | None = None,
) -> Doc:
    """A QUEUED notification record (the seed reports it as SENT)."""
    now = utcnow()
    doc: Doc = {
        "_id": notification_id or new_id("ntf"),
        "tenant_id": tenant_id,
        "transaction_id": transaction_id,
        "channel": channel.value,
        "recipient": recipient,
        "category": category,
        "priority": priority,
        "status": Status.QUEUED.value,
        "content": content,
        "template": template,
        "variables": variables,
        "metadata": metadata,
        "attempts": [],
        "replays": 0,
        "source": source,
        "correlation_id": correlation_id,
        "created_at": now,
        "queued_at": now,
        "updated_at": now,
    }
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
    if request_id is not None:
        doc["request_id"] = request_id
    return doc


def _needs_publish(doc: Doc, created: bool) -> bool:
    # A record stored by an earlier call whose publish was never confirmed is published
    # again now: the status guard in the worker makes a second message harmless.
    return created or (doc["status"] == Status.QUEUED.value and "enqueued_at" not in doc)


class Sender:
    """Stores records and publishes their messages."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def submit_one(self, doc: Doc) -> tuple[Doc, bool]:
        """Store and publish one record; returns the stored record and whether it is new."""
        stored, created = await self._ctx.db.notifications.insert(doc)
        self._failpoint_after_record_write()
        if _needs_publish(stored, created):
            await self._publish([stored])
        return stored, created

    async def submit_many(self, docs: list[Doc]) -> list[Doc]:
        """Store a batch in one write and publish it with pipelined confirms."""
        stored = await self._ctx.db.notifications.insert_many(docs)
        self._failpoint_after_record_write()
        new_ids = {d["_id"] for d in docs}
        pending = [d for d in stored if _needs_publish(d, d["_id"] in new_ids)]
        if pending:
            await self._publish(pending)
        return stored

    async def _publish(self, docs: list[Doc]) -> None:
        broker = self._ctx.broker
        results = await asyncio.gather(
            *(
                broker.publish_notification(
                    channel=Channel(d["channel"]),
                    body=deliver_message_for(d),
                    priority=d["priority"],
                    correlation_id=d.get("correlation_id"),
                )
                for d in docs
            ),
            return_exceptions=True,
        )
        confirmed = [d["_id"] for d, r in zip(docs, results, strict=True) if r is None]
        if confirmed:
            try:
                await self._ctx.db.notifications.mark_enqueued(
                    tenant_id=docs[0]["tenant_id"], notification_ids=confirmed
                )
            except PyMongoError as exc:
                # Published and confirmed: the answer stays 200. Unstamped, the records are
                # published again by the sweep, which the worker's claim makes harmless.
                log.warning("enqueued_not_stamped", count=len(confirmed), error=repr(exc))
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            unconfirmed = [d["_id"] for d, r in zip(docs, results, strict=True) if r is not None]
            discarded = await self._discard(docs[0]["tenant_id"], unconfirmed)
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
            return await self._ctx.db.notifications.discard_unpublished(
                tenant_id=tenant_id, notification_ids=notification_ids
            )
        except Exception as exc:
            log.warning("discard_failed", error=repr(exc))
            return None

    def _failpoint_after_record_write(self) -> None:
        """Test-only: die like `kill -9` between the record write and the publish."""
        if self._ctx.settings.failpoint == "api_after_record_write":
            log.warning("failpoint_crash", failpoint="api_after_record_write")
            os.kill(os.getpid(), signal.SIGKILL)
