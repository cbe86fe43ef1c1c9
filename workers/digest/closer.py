"""Closing a digest and sending it, in steps that each survive a crash:

1. OPEN → CLOSED (conditional on `closes_at` having come): no event joins after this.
2. The digest notification is stored and published through the send pipeline under the
   idempotency key `digest:<id>`: a second run finds it stored and publishes it only if its
   publish was never confirmed.
3. CLOSED → SENT with the notification's id (or EMPTY when every event was cancelled).
A crash anywhere leaves the digest CLOSED with its `digest_flush` message unacked: the broker
redelivers it (or the digest sweep finds the digest) and the steps run again, so the
notification is neither lost nor sent twice; the worker's claim guards the delivery itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from shared import metrics
from shared.db.base import utcnow
from shared.db.client import Database
from shared.db.digests import DigestState
from shared.messaging.broker import Broker
from shared.pipeline import SendPipeline, publish_digest_flush
from workers.digest.compose import digest_record

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DigestHooks:
    """Test-harness hooks (the fault tests kill the process there); production passes none."""

    after_close: Callable[[], None] | None = None
    after_send: Callable[[], None] | None = None


class DigestCloser:
    """Closes and sends digests; safe to run as several copies, and twice on one digest."""

    def __init__(
        self,
        *,
        db: Database,
        broker: Broker,
        pipeline: SendPipeline,
        hooks: DigestHooks | None = None,
    ) -> None:
        self._db = db
        self._broker = broker
        self._pipeline = pipeline
        self._hooks = hooks or DigestHooks()

    async def close(self, *, tenant_id: str, digest_id: str) -> None:
        """Run the steps that remain for this digest; raises on an outage (retry later)."""
        digests = self._db.digests
        doc = await digests.close(tenant_id=tenant_id, digest_id=digest_id, now=utcnow())
        if doc is None:
            log.warning("digest_missing", digest_id=digest_id)
            return
        state = DigestState(doc["state"])
        if state is DigestState.OPEN:  # early (a clock a little behind): wait again
            await publish_digest_flush(
                self._broker, tenant_id=tenant_id, digest_id=digest_id, due=doc["closes_at"]
            )
            return
        if state is not DigestState.CLOSED:
            return  # SENT or EMPTY: a duplicate message
        if self._hooks.after_close is not None:
            self._hooks.after_close()
        if not doc.get("events"):
            await digests.finish(tenant_id=tenant_id, digest_id=digest_id, state=DigestState.EMPTY)
            log.info("digest_empty", digest_id=digest_id)
            return
        stored, created = await self._pipeline.submit_one(digest_record(doc))
        if created:  # a second closer of the same digest stores nothing: count once
            metrics.count_digest(channel=doc["channel"], stage="flushed", events=len(doc["events"]))
        if self._hooks.after_send is not None:
            self._hooks.after_send()
        await digests.finish(
            tenant_id=tenant_id,
            digest_id=digest_id,
            state=DigestState.SENT,
            notification_id=stored.id,
        )
        log.info(
            "digest_sent",
            digest_id=digest_id,
            tenant_id=tenant_id,
            notification_id=stored.id,
            events=len(doc["events"]),
            stored_now=created,
        )
