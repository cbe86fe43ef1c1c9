"""Seed 003: `POST /api/v1/notifications` and `GET /api/v1/notifications/{notification_id}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from api.deps import CtxDep, PrincipalDep
from api.etags import NOT_MODIFIED, json_with_etag
from api.openapi import COMMON, errors
from api.presenters import notification_view
from api.schemas import SendNotificationRequest
from shared.domain import Category, Channel
from shared.errors import NotFound, ValidationFailed
from shared.records import NotificationRecord, TemplateRef
from shared.rendering import TEMPLATE_FIELDS, render_fields

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"], responses=COMMON)


def seed003_key(request_id: str) -> str:
    """The idempotency key a seed-003 `request_id` is stored under."""
    return f"request:{request_id}"


@router.post("", summary="Queue a notification (seed 003)", responses=errors(404))
async def send_notification(
    body: SendNotificationRequest, ctx: CtxDep, principal: PrincipalDep, request: Request
) -> dict[str, Any]:
    """Validate, check user and template, store, publish with confirm, answer."""
    tenant = principal.tenant_id
    channel = Channel(body.notification_type)
    subscriber = await ctx.db.subscribers.get(tenant_id=tenant, subscriber_id=body.user_id)
    settings = await ctx.db.tenant_settings.get(tenant_id=tenant)
    template = await ctx.db.templates.latest_for_locale(
        tenant_id=tenant,
        environment=principal.environment,
        template_code=body.template_code,
        locale=subscriber.get("locale") if subscriber else None,
        default_locale=settings.get("default_locale"),
    )
    missing = []
    if subscriber is None:
        missing.append(f"user_id {body.user_id} does not exist")
    if template is None:
        missing.append(f"template_code {body.template_code} does not exist")
    if missing:
        raise NotFound(missing[0], details=missing[1:])
    assert template is not None
    if template["channel"] != channel.value:
        raise ValidationFailed(
            [
                f"template_code {body.template_code} is a {template['channel']} template, "
                f"not {channel.value}"
            ]
        )
    # Render now so a missing variable is a 400 here rather than a blank message later.
    render_fields(
        {f: template.get(f) for f in TEMPLATE_FIELDS},
        body.variables,
        template_code=body.template_code,
    )
    record = NotificationRecord.new(
        tenant_id=tenant,
        channel=channel,
        recipient=body.user_id,
        category=Category.TRANSACTIONAL.value,
        priority=body.priority,
        # The seed answers with the request_id as the id to track: it names the transaction
        # too, so `manage/get-delivery-status` takes it as well.
        transaction_id=body.request_id,
        correlation_id=request.state.correlation_id,
        source="api.notifications",
        template=TemplateRef(
            code=body.template_code,
            version=template["version"],
            environment=principal.environment,
        ),
        environment=principal.environment,
        variables=body.variables,
        idempotency_key=seed003_key(body.request_id),
        request_id=body.request_id,
        metadata=body.metadata,
    )
    stored, _ = await ctx.pipeline.submit_one(record)
    return {
        "success": True,
        "data": {"notification_id": stored.transaction_id, "status": "queued"},
        "message": "Notification queued successfully",
    }


@router.get(
    "/{notification_id}",
    summary="A notification's status (seed 003)",
    responses={**errors(404), **NOT_MODIFIED},
    response_model=None,
)
async def get_notification(
    notification_id: str,
    ctx: CtxDep,
    principal: PrincipalDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Found by the `request_id` it was sent with, or by its internal id (`ntf_…`).

    Answers with an `ETag`; `If-None-Match` with that tag gets a 304 without a body while
    the notification has not changed.
    """
    repo = ctx.db.notifications
    record = await repo.get(tenant_id=principal.tenant_id, notification_id=notification_id)
    if record is None:
        record = await repo.get_by_idempotency_key(
            tenant_id=principal.tenant_id, idempotency_key=seed003_key(notification_id)
        )
    if record is None:
        raise NotFound(f"notification {notification_id} does not exist")
    body = {"success": True, "data": notification_view(record), "message": "Notification found"}
    return json_with_etag(body, if_none_match=if_none_match)
