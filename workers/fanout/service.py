"""The fan-out worker's services: a consumer of `fanout` messages and the fan-out sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from pymongo.errors import PyMongoError

from shared.db.base import utcnow
from shared.db.client import Database
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.pipeline.fanout import publish_fanout
from workers.consumer import Consumer, Handling, Inbound
from workers.context import WorkerContext
from workers.fanout.expand import FanoutExpander, FanoutHooks
from workers.service import PeriodicService, Service

log = structlog.get_logger(__name__)

_OUTAGES = (BrokerUnavailable, PyMongoError)
_SWEEP_LOCK_S = 60  # a fan-out the sweep re-published is left alone this long


def _ref(message: Inbound) -> tuple[str, str] | None:
    body = message.body
    tenant_id, fanout_id = body.get("tenant_id"), body.get("fanout_id")
    if body.get("kind") != "fanout" or not (
        isinstance(tenant_id, str) and isinstance(fanout_id, str)
    ):
        return None
    return tenant_id, fanout_id


class FanoutHandler:
    """Handles `fanout` messages: expand the fan-out; ack once it is DONE (or someone else's)."""

    def __init__(self, expander: FanoutExpander, *, process_id: str) -> None:
        self._expander = expander
        self._process_id = process_id
        self._claims: dict[tuple[str, str], str] = {}

    async def handle(self, message: Inbound) -> Handling:
        """Idempotent on the fan-out id: a duplicate finds it DONE, or running elsewhere."""
        ref = _ref(message)
        if ref is None:
            log.error("fanout_message_malformed", body=str(message.body)[:200])
            return Handling.REJECT
        tenant_id, fanout_id = ref
        # A token per delivery: two messages of one fan-out never share a claim.
        claim = f"{self._process_id}:{uuid.uuid4().hex[:8]}"
        self._claims[ref] = claim
        try:
            # A redelivered message was taken from a consumer that died or lost its channel:
            # its lease may still look alive, so it is taken over (the cursor says where).
            await self._expander.run(
                tenant_id=tenant_id,
                fanout_id=fanout_id,
                claim=claim,
                take_over=message.redelivered,
            )
        except _OUTAGES as exc:
            log.warning("fanout_interrupted", fanout_id=fanout_id, error=repr(exc))
            await self._release(tenant_id, fanout_id, claim)
            return Handling.REQUEUE
        finally:
            self._claims.pop(ref, None)
        return Handling.ACK

    async def abandon(self, message: Inbound) -> None:
        """Shutdown cut a fan-out off: give its claim up; the nacked message continues it."""
        ref = _ref(message)
        if ref is not None and ref in self._claims:
            await self._release(*ref, self._claims[ref])

    async def _release(self, tenant_id: str, fanout_id: str, claim: str) -> None:
        try:
            await self._expander.release(tenant_id=tenant_id, fanout_id=fanout_id, claim=claim)
        except PyMongoError as exc:  # the lease then runs out on its own
            log.warning("fanout_release_failed", fanout_id=fanout_id, error=repr(exc))


class FanoutSweep:
    """Publishes again the message of fan-outs that stalled (see `FanoutsRepo.take_stalled`)."""

    def __init__(
        self,
        *,
        db: Database,
        broker: Broker,
        outbox_grace_s: float,
        overdue_grace_s: float,
        stall_s: float,
        limit: int,
    ) -> None:
        self._db = db
        self._broker = broker
        self._outbox_grace_s = outbox_grace_s
        self._overdue_grace_s = overdue_grace_s
        self._stall_s = stall_s
        self._limit = limit

    async def sweep(self) -> list[str]:
        """One pass; the fan-out ids whose message was published again."""
        now = utcnow()
        stalled = await self._db.fanouts.take_stalled(
            unpublished_before=now - timedelta(seconds=self._outbox_grace_s),
            expired_before=now - timedelta(seconds=self._overdue_grace_s),
            idle_before=now - timedelta(seconds=self._stall_s),
            lock_until=now + timedelta(seconds=_SWEEP_LOCK_S),
            limit=self._limit,
        )
        done: list[str] = []
        for doc in stalled:
            tenant_id, fanout_id = doc["tenant_id"], doc["_id"]
            try:
                await publish_fanout(self._broker, tenant_id=tenant_id, fanout_id=fanout_id)
            except BrokerUnavailable as exc:  # the lock lapses; the next pass tries again
                log.warning("fanout_republish_failed", fanout_id=fanout_id, error=str(exc))
                continue
            if doc.get("enqueued_at") is None:
                await self._db.fanouts.mark_enqueued(tenant_id=tenant_id, fanout_id=fanout_id)
            log.info("fanout_republished", fanout_id=fanout_id, state=doc["state"])
            done.append(fanout_id)
        return done


def fanout_services(ctx: WorkerContext, *, hooks: FanoutHooks | None = None) -> list[Service]:
    """`python -m workers fanout`: the fan-out consumer and the fan-out sweep."""
    s = ctx.settings
    expander = FanoutExpander(db=ctx.db, pipeline=ctx.pipeline, settings=s, hooks=hooks)
    sweep = FanoutSweep(
        db=ctx.db,
        broker=ctx.broker,
        outbox_grace_s=s.outbox_grace_s,
        overdue_grace_s=s.overdue_grace_s,
        stall_s=s.fanout_stall_s,
        limit=s.maintenance_batch,
    )
    return [
        Consumer(
            broker=ctx.broker,
            queue=ctx.broker.topology.fanout_queue,
            handler=FanoutHandler(expander, process_id=ctx.process_id),
            prefetch=s.fanout_prefetch,
        ),
        PeriodicService(name="fanout_sweep", interval_s=s.maintenance_interval_s, tick=sweep.sweep),
    ]
