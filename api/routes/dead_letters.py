"""Dead-letter admin RPCs under `/api/v1/notifications/manage/` (our extension, camelCase).

Every call is limited to the caller's tenant (the `x-tenant-id` header of each message); the
work is `shared.dlq.DeadLetters`, the same code `notifyctl dlq` runs. A broker that does not
answer within `NOTIFY_PUBLISH_TIMEOUT_S` gives 503; another operation holding a DLQ, 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import AppContext, Principal
from api.dead_letter_schemas import (
    ChangeDeadLettersRequest,
    GetDeadLetterRequest,
    ListDeadLetterOperationsRequest,
    ListDeadLettersRequest,
)
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from shared.dlq.ops import DeadLetters
from shared.dlq.results import Action
from shared.dlq.views import detail_view, listing_view, operation_view, result_view
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["dead letters"], responses=COMMON)


def _dead_letters(ctx: AppContext) -> DeadLetters:
    s = ctx.settings
    return DeadLetters(
        db=ctx.db,
        amqp_url=s.rabbitmq_url,
        topology=ctx.broker.topology,
        timeout_s=s.publish_timeout_s,
        lock_wait_s=s.publish_timeout_s,
    )


# Figures of whole DLQs: they count every tenant's messages, so only the operator tenant
# (NOTIFY_OPERATOR_TENANT) sees them; others get null (tenant isolation).
_CROSS_TENANT = ("scanned", "queueDepth")


def _for_tenant(view: dict[str, Any], ctx: AppContext, principal: Principal) -> dict[str, Any]:
    if principal.tenant_id != ctx.settings.operator_tenant:
        view.update({k: None for k in _CROSS_TENANT if k in view})
    return view


def _actor(principal: Principal) -> str:
    return f"api:{principal.tenant_id}/{principal.key_label or 'unknown-key'}"


@router.post(
    "/list-dead-letters", summary="List dead-lettered notifications", responses=errors(409)
)
async def list_dead_letters(
    body: ListDeadLettersRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Oldest first, channel by channel; nothing is moved or reordered by looking."""
    listing = await _dead_letters(ctx).list_dead_letters(
        filters=body.to_filter(tenant_id=principal.tenant_id), limit=body.limit
    )
    return _for_tenant(listing_view(listing), ctx, principal)


@router.post(
    "/get-dead-letter",
    summary="One dead letter: message, record and attempts",
    responses=errors(404),
)
async def get_dead_letter(
    body: GetDeadLetterRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """404 when the notification (or no notification of the transaction) is dead-lettered."""
    details = await _dead_letters(ctx).get_dead_letters(
        tenant_id=principal.tenant_id,
        notification_id=body.notificationId,
        transaction_id=body.transactionId,
    )
    if not details:
        named = (
            f"notification {body.notificationId}"
            if body.notificationId
            else f"transaction {body.transactionId}"
        )
        raise NotFound(f"no dead letter for {named}")
    return {"deadLetters": [detail_view(d) for d in details]}


@router.post(
    "/replay-dead-letters", summary="Send dead letters back to their queue", responses=errors(409)
)
async def replay_dead_letters(
    body: ChangeDeadLettersRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """Records go back to QUEUED and the workers deliver them again; audited."""
    return await _change(action="replay", body=body, ctx=ctx, principal=principal, request=request)


@router.post("/purge-dead-letters", summary="Remove dead letters", responses=errors(409))
async def purge_dead_letters(
    body: ChangeDeadLettersRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """The messages go; the records stay as they are (FAILED, with their attempts); audited."""
    return await _change(action="purge", body=body, ctx=ctx, principal=principal, request=request)


async def _change(
    *,
    action: Action,
    body: ChangeDeadLettersRequest,
    ctx: AppContext,
    principal: Principal,
    request: Request,
) -> dict[str, Any]:
    """Replay or purge what `body` selects, within the caller's tenant."""
    result = await _dead_letters(ctx).change_dead_letters(
        action=action,
        filters=body.to_filter(tenant_id=principal.tenant_id),
        actor=_actor(principal),
        limit=body.limit,
        all_matching=body.all,
        dry_run=body.dryRun,
        correlation_id=request.state.correlation_id,
    )
    return _for_tenant(result_view(result), ctx, principal)


@router.post("/list-dead-letter-operations", summary="Audit trail of replays and purges")
async def list_dead_letter_operations(
    body: ListDeadLetterOperationsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """This tenant's operations, dry runs included, newest first."""
    docs = await _dead_letters(ctx).list_operations(
        tenant_id=principal.tenant_id, action=body.action, limit=body.limit
    )
    return {"operations": [_for_tenant(operation_view(d), ctx, principal) for d in docs]}
