"""Delivery receipts from providers: `POST /webhooks/sendgrid`, `/webhooks/twilio`, `/webhooks/ses`.

Not authenticated by API key: each request is verified by the provider's signature
(`api/receipts/verify.py`) against the tenant's provider config, and a request that is
unsigned or badly signed is a 401 that changes nothing. A verified request's events are stored
raw (once per event id), queued for the `events` worker, and answered at once; the worker
applies them (docs/webhooks.md). The tenant comes from `?tenant=` (SendGrid may instead rely on
the `tenant_id` custom argument every mail carries).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from fastapi import APIRouter, Query, Request

from api.context import AppContext
from api.deps import CtxDep
from api.openapi import errors
from api.receipts.parse import sendgrid_receipts, ses_receipts, twilio_receipts
from api.receipts.verify import verify_sendgrid, verify_twilio
from shared.db.base import Doc
from shared.errors import Unauthorized, Unavailable, ValidationFailed
from shared.providers.stored import configs_of_type

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks", tags=["receipts"], responses=errors(400, 401, 503))

TenantQuery = Query(default=None, max_length=200, description="the tenant the receipts are for")


async def _secrets(ctx: AppContext, tenant_id: str, provider_type: str, field: str) -> list[str]:
    configs = await configs_of_type(
        providers=ctx.db.providers,
        cipher=ctx.cipher,
        tenant_id=tenant_id,
        provider_type=provider_type,
        include_inactive=True,  # a receipt may come after its config was switched off
    )
    return [str(c.credentials[field]) for c in configs if c.credentials.get(field)]


async def _accept(
    ctx: AppContext, tenant_id: str, provider: str, receipts: list[Doc]
) -> dict[str, Any]:
    """Store, queue for the events worker, answer."""
    ids = await ctx.db.receipts.store(tenant_id=tenant_id, receipts=receipts)
    if ids:
        # Unconfirmed, this raises (503): the provider retries a non-2xx, and its copy is
        # stored as nothing new and queued again.
        await ctx.broker.publish_to_queue(
            queue=ctx.broker.topology.events_queue,
            body={"v": 1, "kind": "receipts", "tenant_id": tenant_id, "receipt_ids": ids},
        )
    log.info("receipts_received", provider=provider, tenant_id=tenant_id, count=len(ids))
    return {"received": len(ids)}


@router.post("/sendgrid", summary="SendGrid Event Webhook (ECDSA-signed)")
async def sendgrid_events(
    request: Request, ctx: CtxDep, tenant: str | None = TenantQuery
) -> dict[str, Any]:
    """A JSON array of events, signed with the key in the tenant's SENDGRID config."""
    body = await request.body()
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        events = None
    if not isinstance(events, list):
        # Checked after the signature would be kinder to probes, but nothing here is stored.
        raise ValidationFailed(["body must be a JSON array of events"])
    receipts = sendgrid_receipts(events)
    claimed = {r.get("claimed_tenant") for r in receipts} - {None}
    tenant_id = tenant or (claimed.pop() if len(claimed) == 1 else None)
    if tenant_id is None:
        raise Unauthorized("name the tenant with ?tenant= (its events carry none, or several)")
    keys = await _secrets(ctx, tenant_id, "SENDGRID", "webhookPublicKey")
    verify_sendgrid(body=body, headers=request.headers, public_keys=keys)
    mine = [r for r in receipts if r.pop("claimed_tenant", None) in (None, tenant_id)]
    return await _accept(ctx, tenant_id, "SENDGRID", mine)


def _public_url(ctx: AppContext, request: Request) -> str:
    """The URL Twilio called: the public base URL (behind a proxy) with this path and query."""
    base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


@router.post("/twilio", summary="Twilio status callbacks (X-Twilio-Signature)")
async def twilio_status(
    request: Request, ctx: CtxDep, tenant: str | None = TenantQuery
) -> dict[str, Any]:
    """A form-encoded status callback, signed with the auth token of the tenant's TWILIO config."""
    if not tenant:
        raise Unauthorized("name the tenant with ?tenant= in the status callback URL")
    params = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    tokens = await _secrets(ctx, tenant, "TWILIO", "authToken")
    verify_twilio(
        url=_public_url(ctx, request), params=params, headers=request.headers, auth_tokens=tokens
    )
    return await _accept(ctx, tenant, "TWILIO", twilio_receipts(dict(params)))


@router.post("/ses", summary="SES events through SNS (signed by SNS)")
async def ses_events(
    request: Request, ctx: CtxDep, tenant: str | None = TenantQuery
) -> dict[str, Any]:
    """An SNS message: a subscription to confirm, or a Notification carrying an SES event."""
    if not tenant:
        raise Unauthorized("name the tenant with ?tenant= in the SNS subscription URL")
    try:
        message = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict):
        raise ValidationFailed(["body must be an SNS message (a JSON object)"])
    assert ctx.sns is not None
    assert ctx.http is not None
    await ctx.sns.verify(message)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL") or "")
        if not ctx.sns.allowed(url):
            raise ValidationFailed(["SubscribeURL is not an allowed SNS URL"])
        try:
            response = await ctx.http.get(url)
            response.raise_for_status()
        except Exception as exc:  # SNS sends the confirmation again until it is taken
            raise Unavailable(f"the subscription could not be confirmed: {exc}") from None
        log.info("sns_subscription_confirmed", tenant_id=tenant, topic=message.get("TopicArn"))
        return {"confirmed": True}
    if kind != "Notification":
        return {"received": 0}
    return await _accept(ctx, tenant, "SES", ses_receipts(message))
