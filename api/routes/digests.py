"""Seed 000's digest RPCs: `manage/send-with-digest`, `manage/cancel-digest-event`.

An event joins its key's open digest by one upsert (a unique partial index keeps one open
digest per key); the request that opens a digest also parks a `digest_flush` message until
the digest closes, and the digest worker (`python -m workers digest`) then sends one
notification for all of its events. See docs/scheduling.md.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from api.context import AppContext, Principal
from api.deps import AdminDep, CtxDep
from api.digest_status import cancel_digest_event
from api.openapi import COMMON, errors
from api.scheduling_schemas import DigestConfig, SendWithDigestRequest
from api.schemas import TransactionRequest
from api.sends import When, record_for
from shared import metrics
from shared.db.base import Doc, utcnow
from shared.db.digests import DigestKey
from shared.errors import BrokerUnavailable, NotFound
from shared.ids import new_id
from shared.pipeline import publish_digest_flush
from shared.scheduling import next_cron_fire, zone_named

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["digests"], responses=COMMON)


def _transaction_id(tenant_id: str, idempotency_key: str | None) -> str:
    """A new id; with an idempotency key, the same id every time (a retry finds its event)."""
    if idempotency_key is None:
        return new_id("txn")
    digest = hashlib.sha256(f"{tenant_id}\0{idempotency_key}".encode()).hexdigest()
    return f"txn_dk{digest[:24]}"


async def _closes_at(
    ctx: AppContext, config: DigestConfig, *, tenant_id: str, user_id: str, now: datetime
) -> datetime:
    if config.strategy != "SCHEDULED":
        return now + timedelta(seconds=config.windowSeconds or 0)
    zone_name = config.timezone
    if zone_name is None:
        subscriber = await ctx.db.subscribers.get(tenant_id=tenant_id, subscriber_id=user_id)
        zone_name = (subscriber or {}).get("timezone") or "UTC"
    return next_cron_fire(config.cronExpression or "", zone=zone_named(zone_name), after=now)


async def _template_ref(ctx: AppContext, principal: Principal, code: str | None) -> Doc | None:
    if code is None:
        return None
    template = await ctx.db.templates.get(
        tenant_id=principal.tenant_id, environment=principal.environment, template_code=code
    )
    if template is None:
        raise NotFound(f"template {code} does not exist")
    return {"code": code, "version": template["version"], "environment": principal.environment}


@router.post(
    "/send-with-digest", summary="Group events into one notification", responses=errors(404)
)
async def send_with_digest(
    body: SendWithDigestRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """The event joins its key's open digest (or opens one); LOOK_BACK sends it at once when
    no event of the key came within `lookBackSeconds`. Answers the event's transaction."""
    config = body.digestConfig
    tenant_id = principal.tenant_id
    now = utcnow()
    txn = _transaction_id(tenant_id, body.idempotencyKey)
    key = DigestKey(
        tenant_id=tenant_id,
        recipient=body.userId,
        channel=body.channel_enum.value,
        digest_key=config.digestKey,
    )
    if body.idempotencyKey is not None and (
        await ctx.db.digests.find_by_event(tenant_id=tenant_id, transaction_id=txn)
        or await ctx.db.notifications.find_by_transaction(tenant_id=tenant_id, transaction_id=txn)
    ):
        return {"transactionId": txn}
    template = await _template_ref(ctx, principal, config.templateCode)
    if config.strategy == "LOOK_BACK":
        previous = await ctx.db.digest_activity.touch(key=key, at=now)
        look_back = timedelta(seconds=config.lookBackSeconds or config.windowSeconds or 0)
        if previous is None or now - previous > look_back:
            record = record_for(
                body,
                tenant_id=tenant_id,
                recipient=body.userId,
                transaction_id=txn,
                correlation_id=request.state.correlation_id,
                source="manage.send-with-digest",
                idempotency_key=f"digest-event:{body.idempotencyKey}"
                if body.idempotencyKey
                else None,
                when=When(),
                environment=principal.environment,
            )
            stored, _ = await ctx.pipeline.submit_one(record)
            return {"transactionId": stored.transaction_id}
    event = {
        "transaction_id": txn,
        "at": now,
        "content": body.content.to_record().model_dump(exclude_none=True),
        "category": body.category,
        "priority": body.priority,
        "correlation_id": request.state.correlation_id,
    }
    opening: Doc = {
        "_id": new_id("dig"),
        "strategy": config.strategy,
        "opened_at": now,
        "closes_at": await _closes_at(
            ctx, config, tenant_id=tenant_id, user_id=body.userId, now=now
        ),
        "template": template,
        "environment": principal.environment,
    }
    joined = await ctx.db.digests.join(
        key=key, event=event, opening=opening, max_events=ctx.settings.digest_max_events
    )
    if not joined.duplicate:
        metrics.count_digest(channel=body.channel_enum.value, stage="accumulated")
    for digest_id in joined.closed_full:  # best effort: the digest sweep sends it otherwise
        with contextlib.suppress(BrokerUnavailable):
            await publish_digest_flush(
                ctx.broker, tenant_id=tenant_id, digest_id=digest_id, due=now
            )
    if joined.opened is not None:
        try:
            await publish_digest_flush(
                ctx.broker, tenant_id=tenant_id, digest_id=opening["_id"], due=opening["closes_at"]
            )
        except BrokerUnavailable:
            # 503 means "not done": take the event back out. The digest stays open (others
            # may have joined it) and the digest sweep closes it once it is overdue.
            await ctx.db.digests.remove_event(
                tenant_id=tenant_id, transaction_id=txn, cancelled_at=None
            )
            raise
    return {"transactionId": txn}


@router.post(
    "/cancel-digest-event",
    summary="Take an event out of its open digest",
    responses=errors(404, 409),
)
async def cancel_digest_event_route(
    body: TransactionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The event leaves its digest (a digest left empty sends nothing); 409 once sent."""
    return await cancel_digest_event(
        ctx, tenant_id=principal.tenant_id, transaction_id=body.transactionId
    )
