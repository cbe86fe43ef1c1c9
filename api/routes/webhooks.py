"""Outbound webhook RPCs: `manage/create-webhook`, `list-webhooks`, `delete-webhook`,
`rotate-webhook-secret`, `list-webhook-deliveries` (docs/webhooks.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from api.context import AppContext
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.schemas import EmptyRequest
from api.webhook_schemas import (
    CreateWebhookRequest,
    ListWebhookDeliveriesRequest,
    WebhookIdRequest,
)
from shared.db.base import Doc, utcnow
from shared.errors import NotFound
from shared.ids import new_id
from shared.timefmt import iso_z as iso
from shared.webhooks.signing import new_secret

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["webhooks"], responses=COMMON)

ROTATION_GRACE = timedelta(hours=24)  # the old secret signs beside the new one this long


def webhook_view(doc: Doc) -> dict[str, Any]:
    """An endpoint as the RPCs show it (never its secret)."""
    return {
        "webhookId": doc["webhook_id"],
        "url": doc["url"],
        "events": doc.get("events", []),
        "description": doc.get("description"),
        "active": doc.get("active", False),
        "failingSince": iso(doc.get("failing_since")),
        "disabledAt": iso(doc.get("disabled_at")),
        "disabledReason": doc.get("disabled_reason"),
        "createdAt": iso(doc.get("created_at")),
    }


def delivery_view(doc: Doc) -> dict[str, Any]:
    """One delivery with every attempt."""
    return {
        "deliveryId": doc["_id"],
        "eventId": doc.get("event_id"),
        "eventType": doc.get("event_type"),
        "status": doc.get("status"),
        "attemptCount": doc.get("attempt_count", 0),
        "attempts": [
            {
                "attempt": a.get("n"),
                "at": iso(a.get("at")),
                "outcome": a.get("outcome"),
                "statusCode": a.get("status_code"),
                "error": a.get("error"),
                "durationMs": a.get("duration_ms"),
            }
            for a in doc.get("attempts", [])
        ],
        "nextAttemptAt": iso(doc.get("next_attempt_at"))
        if doc.get("status") == "PENDING"
        else None,
        "deliveredAt": iso(doc.get("delivered_at")),
        "createdAt": iso(doc.get("created_at")),
    }


def _changed(ctx: AppContext, tenant_id: str) -> None:
    if ctx.webhook_events is not None:
        ctx.webhook_events.forget(tenant_id)


@router.post("/create-webhook", summary="Register an endpoint for webhook events")
async def create_webhook(
    body: CreateWebhookRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """`{webhookId, secret, webhook}`: the signing secret is shown this once."""
    secret = new_secret()
    doc = await ctx.db.webhooks.create(
        tenant_id=principal.tenant_id,
        webhook_id=new_id("whk"),
        fields={
            "url": body.url,
            "events": list(body.events),
            "description": body.description,
            "secret_enc": ctx.cipher.encrypt({"secret": secret}),
        },
    )
    _changed(ctx, principal.tenant_id)
    return {"webhookId": doc["webhook_id"], "secret": secret, "webhook": webhook_view(doc)}


@router.post("/list-webhooks", summary="List the tenant's webhook endpoints")
async def list_webhooks(body: EmptyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """Every endpoint, active or disabled, oldest first."""
    docs = await ctx.db.webhooks.list_all(tenant_id=principal.tenant_id)
    return {"webhooks": [webhook_view(d) for d in docs]}


@router.post("/delete-webhook", summary="Delete a webhook endpoint", responses=errors(404))
async def delete_webhook(
    body: WebhookIdRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Deliveries not made yet are skipped; the recorded ones stay listed."""
    if not await ctx.db.webhooks.delete(tenant_id=principal.tenant_id, webhook_id=body.webhookId):
        raise NotFound(f"webhook {body.webhookId} does not exist")
    _changed(ctx, principal.tenant_id)
    return {"deleted": True, "webhookId": body.webhookId}


@router.post("/rotate-webhook-secret", summary="A new signing secret", responses=errors(404))
async def rotate_webhook_secret(
    body: WebhookIdRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """`{webhookId, secret}`; the old secret also signs for 24 h, so receivers can switch."""
    doc = await ctx.db.webhooks.get(tenant_id=principal.tenant_id, webhook_id=body.webhookId)
    if doc is None:
        raise NotFound(f"webhook {body.webhookId} does not exist")
    secret = new_secret()
    await ctx.db.webhooks.set_secret(
        tenant_id=principal.tenant_id,
        webhook_id=body.webhookId,
        secret_enc=ctx.cipher.encrypt({"secret": secret}),
        previous={"secret_enc": doc["secret_enc"], "until": utcnow() + ROTATION_GRACE},
    )
    return {"webhookId": body.webhookId, "secret": secret}


@router.post(
    "/list-webhook-deliveries",
    summary="An endpoint's deliveries and every attempt",
    responses=errors(404),
)
async def list_webhook_deliveries(
    body: ListWebhookDeliveriesRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Newest first, paged."""
    if await ctx.db.webhooks.get(tenant_id=principal.tenant_id, webhook_id=body.webhookId) is None:
        raise NotFound(f"webhook {body.webhookId} does not exist")
    items, total = await ctx.db.webhook_deliveries.page(
        tenant_id=principal.tenant_id,
        webhook_id=body.webhookId,
        page=body.page,
        page_size=body.pageSize,
    )
    return {
        "deliveries": [delivery_view(d) for d in items],
        "page": body.page,
        "pageSize": body.pageSize,
        "totalCount": total,
        "hasMore": body.page * body.pageSize < total,
    }
