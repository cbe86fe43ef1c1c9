"""Seed 000's admin RPCs under `/api/v1/notifications/manage/` (camelCase, as the seed)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from api.deps import AdminDep, CtxDep
from api.presenters import delivery_status_view, provider_view, subscriber_view, template_view
from api.schemas import (
    ConfigureProviderRequest,
    CreateSubscriberRequest,
    CreateTemplateRequest,
    EmptyRequest,
    GetTemplateRequest,
    PageRequest,
    SendBulkRequest,
    SendRequest,
    TransactionRequest,
    UpdateSubscriberRequest,
    UserIdRequest,
)
from api.sending import Sender, new_record
from shared.domain import Channel, ProviderType
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id
from shared.rendering import check_syntax

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["manage"])

_PROFILE_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phone": "phone",
    "locale": "locale",
    "timezone": "timezone",
    "avatar": "avatar",
    "data": "data",
}


def _content(body: SendRequest | SendBulkRequest) -> dict[str, Any]:
    c = body.content
    return {
        "title": c.title,
        "body": c.body,
        "subject": c.subject,
        "data": c.data,
        "deep_link": c.deepLink,
        "image_url": c.imageUrl,
    }


@router.post("/send", summary="Send immediately")
async def send(
    body: SendRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One recipient, one channel; `idempotencyKey` returns the first transaction again."""
    record = new_record(
        tenant_id=principal.tenant_id,
        channel=body.channel_enum,
        recipient=body.userId,
        category=body.category,
        priority=body.priority,
        transaction_id=new_id("txn"),
        correlation_id=request.state.correlation_id,
        source="manage.send",
        content=_content(body),
        idempotency_key=f"send:{body.idempotencyKey}" if body.idempotencyKey else None,
    )
    stored, _ = await Sender(ctx).submit_one(record)
    return {"transactionId": stored["transaction_id"]}


@router.post("/send-bulk", summary="Fan out to up to 100 users")
async def send_bulk(
    body: SendBulkRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One record per recipient, written in one batch, published with pipelined confirms."""
    limit = ctx.settings.bulk_max_recipients
    user_ids = list(dict.fromkeys(body.userIds))  # duplicates would notify a user twice
    if len(body.userIds) > limit:
        raise ValidationFailed([f"userIds must contain at most {limit} items"])
    transaction_id = new_id("txn")
    content = _content(body)
    records = [
        new_record(
            tenant_id=principal.tenant_id,
            channel=body.channel_enum,
            recipient=user_id,
            category=body.category,
            priority=body.priority,
            transaction_id=transaction_id,
            correlation_id=request.state.correlation_id,
            source="manage.send-bulk",
            content=content,
            idempotency_key=f"bulk:{body.idempotencyKey}:{user_id}"
            if body.idempotencyKey
            else None,
        )
        for user_id in user_ids
    ]
    stored = await Sender(ctx).submit_many(records)
    return {"transactionId": stored[0]["transaction_id"], "recipientCount": len(stored)}


@router.post("/get-delivery-status", summary="Track a transaction")
async def get_delivery_status(
    body: TransactionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The seed's shape; a bulk transaction adds `summary` and `recipients`."""
    docs = await ctx.db.notifications.find_by_transaction(
        tenant_id=principal.tenant_id, transaction_id=body.transactionId
    )
    if not docs:
        raise NotFound(f"transaction {body.transactionId} does not exist")
    return delivery_status_view(docs)


# --- subscribers -------------------------------------------------------------------------


def _profile(data: Any) -> dict[str, Any]:
    given = data.model_dump(exclude_unset=True)
    return {_PROFILE_FIELDS[k]: v for k, v in given.items()}


@router.post("/create-subscriber", summary="Create a subscriber")
async def create_subscriber(
    body: CreateSubscriberRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """409 if the user exists already."""
    doc = await ctx.db.subscribers.create(
        tenant_id=principal.tenant_id,
        subscriber_id=body.userId,
        profile=_profile(body.subscriberData),
    )
    return {"subscriber": subscriber_view(doc)}


@router.post("/get-subscriber", summary="Get a subscriber")
async def get_subscriber(body: UserIdRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """404 if there is none."""
    doc = await ctx.db.subscribers.get(tenant_id=principal.tenant_id, subscriber_id=body.userId)
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"subscriber": subscriber_view(doc)}


@router.post("/update-subscriber-data", summary="Update a subscriber's profile")
async def update_subscriber(
    body: UpdateSubscriberRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Only the given fields change."""
    doc = await ctx.db.subscribers.update_profile(
        tenant_id=principal.tenant_id,
        subscriber_id=body.userId,
        profile=_profile(body.subscriberData),
    )
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"subscriber": subscriber_view(doc)}


@router.post("/delete-subscriber", summary="Delete a subscriber")
async def delete_subscriber(
    body: UserIdRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """404 if there is none."""
    if not await ctx.db.subscribers.delete(
        tenant_id=principal.tenant_id, subscriber_id=body.userId
    ):
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"deleted": True, "userId": body.userId}


@router.post("/list-subscribers", summary="List subscribers")
async def list_subscribers(body: PageRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """A page, in creation order."""
    items, total = await ctx.db.subscribers.list_page(
        tenant_id=principal.tenant_id, page=body.page, page_size=body.pageSize
    )
    return {
        "subscribers": [subscriber_view(d) for d in items],
        "page": body.page,
        "pageSize": body.pageSize,
        "totalCount": total,
        "hasMore": body.page * body.pageSize < total,
    }


# --- providers ---------------------------------------------------------------------------

_REQUIRED_CREDENTIALS: dict[ProviderType, tuple[str, ...]] = {
    ProviderType.FCM: ("serviceAccountJson",),
    ProviderType.SENDGRID: ("apiKey", "fromEmail"),
}


def _check_credentials(provider: ProviderType, credentials: dict[str, Any]) -> None:
    if provider not in _REQUIRED_CREDENTIALS:
        supported = ", ".join(p.value for p in _REQUIRED_CREDENTIALS)
        raise ValidationFailed(
            [f"providerType {provider.value} has no delivery adapter yet (supported: {supported})"]
        )
    errors = [
        f"credentials.{name} is required for {provider.value}"
        for name in _REQUIRED_CREDENTIALS[provider]
        if not isinstance(credentials.get(name), str) or not credentials[name].strip()
    ]
    if provider is ProviderType.FCM and not errors:
        try:
            info = orjson.loads(credentials["serviceAccountJson"])
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            errors.append("credentials.serviceAccountJson must be a service-account JSON document")
        else:
            errors += [
                f"credentials.serviceAccountJson lacks {key}"
                for key in ("project_id", "client_email", "private_key")
                if not info.get(key)
            ]
    if provider is ProviderType.SENDGRID and not errors and "@" not in credentials["fromEmail"]:
        errors.append("credentials.fromEmail must be an e-mail address")
    if errors:
        raise ValidationFailed(errors)


@router.post("/configure-provider", summary="Configure a delivery provider")
async def configure_provider(
    body: ConfigureProviderRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Credentials are checked, then stored encrypted; they are never returned."""
    provider = ProviderType(body.providerType)
    _check_credentials(provider, body.credentials)
    doc = await ctx.db.providers.upsert(
        tenant_id=principal.tenant_id,
        provider_id=body.providerId or provider.value,
        fields={
            "provider_type": provider.value,
            "channel": provider.channel.value,
            "active": body.active,
            "priority": body.priority,
            "endpoint": body.endpoint.rstrip("/") if body.endpoint else None,
            "credentials_enc": ctx.cipher.encrypt(body.credentials),
            "credential_fields": sorted(body.credentials),
        },
    )
    return {"provider": provider_view(doc)}


@router.post("/get-providers", summary="List configured providers")
async def get_providers(body: EmptyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """Without secrets."""
    docs = await ctx.db.providers.list_all(tenant_id=principal.tenant_id)
    return {"providers": [provider_view(d) for d in docs]}


# --- templates (our extension) -------------------------------------------------------------


@router.post("/create-template", summary="Create a template version")
async def create_template(
    body: CreateTemplateRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Every call stores a new version; syntax is checked first."""
    fields = {"subject": body.subject, "title": body.title, "body": body.body}
    check_syntax(fields)
    doc = await ctx.db.templates.create_version(
        tenant_id=principal.tenant_id,
        template_code=body.templateCode,
        fields={**fields, "channel": Channel.from_api(body.channel).value, "locale": body.locale},
    )
    return {"template": template_view(doc)}


@router.post("/get-template", summary="Get a template (latest or a given version)")
async def get_template(
    body: GetTemplateRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """404 if there is none."""
    doc = await ctx.db.templates.get(
        tenant_id=principal.tenant_id, template_code=body.templateCode, version=body.version
    )
    if doc is None:
        raise NotFound(f"template {body.templateCode} does not exist")
    return {"template": template_view(doc)}


@router.post("/list-templates", summary="List templates (latest versions)")
async def list_templates(body: EmptyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """The latest version of each template code."""
    docs = await ctx.db.templates.list_latest(tenant_id=principal.tenant_id)
    return {"templates": [template_view(d) for d in docs]}
