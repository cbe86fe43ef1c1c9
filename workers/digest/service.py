"""The digest worker's services: a consumer of `digest_flush` messages and the digest sweep."""

from __future__ import annotations

from datetime import timedelta

import structlog
from pymongo.errors import ConnectionFailure

from shared.db.base import utcnow
from shared.db.client import Database
from shared.errors import BrokerUnavailable
from workers.consumer import Consumer, Handling, Inbound
from workers.context import WorkerContext
from workers.digest.closer import DigestCloser, DigestHooks
from workers.service import PeriodicService, Service

log = structlog.get_logger(__name__)

_OUTAGES = (BrokerUnavailable, ConnectionFailure)


class DigestFlushHandler:
    """Handles `digest_flush` messages: close the digest and send it; ack only after that."""

    def __init__(self, closer: DigestCloser) -> None:
        self._closer = closer

    async def handle(self, message: Inbound) -> Handling:
        """Idempotent on the digest id: a duplicate finds the digest SENT and does nothing."""
        body = message.body
        tenant_id, digest_id = body.get("tenant_id"), body.get("digest_id")
        if body.get("kind") != "digest_flush" or not (
            isinstance(tenant_id, str) and isinstance(digest_id, str)
        ):
            log.error("digest_message_malformed", body=str(body)[:200])
            return Handling.REJECT
        try:
            await self._closer.close(tenant_id=tenant_id, digest_id=digest_id)
        except _OUTAGES as exc:
            log.warning("digest_not_closed", digest_id=digest_id, error=str(exc))
            return Handling.REQUEUE
        return Handling.ACK

    async def abandon(self, message: Inbound) -> None:
        """Nothing to hand back: a closed digest is taken again by whoever gets the message."""


class DigestSweep:
    """Finds digests whose flush message was lost (or whose closer died) and finishes them."""

    def __init__(self, *, db: Database, closer: DigestCloser, grace_s: float, limit: int) -> None:
        self._db = db
        self._closer = closer
        self._grace_s = grace_s
        self._limit = limit

    async def sweep(self) -> list[str]:
        """One pass; the digest ids it finished."""
        before = utcnow() - timedelta(seconds=self._grace_s)
        done: list[str] = []
        for tenant_id, digest_id in await self._db.digests.overdue(
            before=before, limit=self._limit
        ):
            try:
                await self._closer.close(tenant_id=tenant_id, digest_id=digest_id)
            except _OUTAGES as exc:
                log.warning("digest_sweep_failed", digest_id=digest_id, error=str(exc))
                continue
            done.append(digest_id)
        if done:
            log.info("digest_sweep_finished", digests=len(done))
        return done


def digest_services(ctx: WorkerContext, *, hooks: DigestHooks | None = None) -> list[Service]:
    """`python -m workers digest`: the flush consumer and the sweep."""
    s = ctx.settings
    closer = DigestCloser(db=ctx.db, broker=ctx.broker, pipeline=ctx.pipeline, hooks=hooks)
    sweep = DigestSweep(
        db=ctx.db, closer=closer, grace_s=s.overdue_grace_s, limit=s.maintenance_batch
    )
    return [
        Consumer(
            broker=ctx.broker,
            queue=ctx.broker.topology.digest_queue,
            handler=DigestFlushHandler(closer),
            prefetch=min(s.worker_prefetch, 50),
        ),
        PeriodicService(name="digest_sweep", interval_s=s.maintenance_interval_s, tick=sweep.sweep),
    ]
