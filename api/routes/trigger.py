"""`manage/trigger` (our extension): run a workflow for a user, a list of users, or a topic.

Each step of each user becomes a notification through the send pipeline, under one
transaction id; `manage/get-delivery-status` reports it step by step. For a topic, a fan-out
carrying the trigger is stored and the fan-out worker makes the records (`workers/fanout/`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import Principal
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.routes.topics import existing_topic
from api.topic_sends import fanout_document
from api.workflow_schemas import TriggerRequest
from shared.db.base import Doc
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.workflow_runs import Trigger, Workflow, records_for, render_steps

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["workflows"], responses=COMMON)


def _audience_problems(body: TriggerRequest, limit: int) -> list[str]:
    errors_: list[str] = []
    if (body.workflowId is None) == (body.workflowKey is None):
        errors_.append("exactly one of workflowId and workflowKey is required")
    named = [n for n in ("userId", "userIds", "topicKey") if getattr(body, n) is not None]
    if len(named) != 1:
        errors_.append("exactly one of userId, userIds and topicKey is required")
    if body.userIds is not None and len(body.userIds) > limit:
        errors_.append(f"userIds must contain at most {limit} items")
    return errors_


@router.post(
    "/trigger",
    summary="Run a workflow for a user, up to 100 users, or a topic's subscribers",
    responses=errors(404, 409),
)
async def trigger(
    body: TriggerRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """The workflow's current version in the key's environment, rendered with `payload`;
    an inactive workflow is a 409 and sends nothing. With `topicKey`, the fan-out worker runs
    it for every subscriber of the topic (the answer comes once the fan-out is stored and its
    message confirmed)."""
    problems = _audience_problems(body, ctx.settings.bulk_max_recipients)
    if problems:
        raise ValidationFailed(problems)
    topic = None
    if body.topicKey is not None:
        topic = await existing_topic(ctx, principal.tenant_id, body.topicKey)
    doc = await ctx.db.workflows.current(
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        workflow_id=body.workflowId,
        key=body.workflowKey,
    )
    name = body.workflowId or body.workflowKey
    if doc is None or doc.get("deleted"):
        raise NotFound(f"workflow {name} does not exist in {principal.environment}")
    workflow = Workflow.from_document(doc)
    if not workflow.definition.active:
        raise Conflict(f"workflow {workflow.key} is inactive: nothing was sent")
    contents = render_steps(workflow, body.payload)
    if topic is not None:
        return await _trigger_topic(ctx, principal, request, body, workflow, topic)
    users = [body.userId] if body.userId is not None else list(dict.fromkeys(body.userIds or []))
    subscribers = await _subscribers_if_needed(ctx, principal.tenant_id, workflow, users)
    records = records_for(
        workflow,
        Trigger(
            tenant_id=principal.tenant_id,
            environment=principal.environment,
            transaction_id=new_id("txn"),
            payload=body.payload,
            idempotency_key=body.idempotencyKey,
            correlation_id=request.state.correlation_id,
        ),
        users=users,
        subscribers=subscribers,
        contents=contents,
    )
    stored = await ctx.pipeline.submit_many(records)
    return {"transactionId": stored[0].transaction_id, "recipientCount": len(users)}


async def _subscribers_if_needed(
    ctx: CtxDep, tenant_id: str, workflow: Workflow, users: list[str]
) -> dict[str, Doc]:
    """The subscribers, read once per trigger, only when a channel default is off (then an
    explicit choice of the subscriber decides)."""
    definition = workflow.definition
    if definition.critical or all(
        definition.channel_on_by_default(s.channel) for s in definition.steps
    ):
        return {}
    return await ctx.db.subscribers.get_many(tenant_id=tenant_id, subscriber_ids=users)


async def _trigger_topic(
    ctx: CtxDep,
    principal: Principal,
    request: Request,
    body: TriggerRequest,
    workflow: Workflow,
    topic: Doc,
) -> dict[str, Any]:
    """A fan-out that carries the trigger: the worker renders this very workflow version."""
    doc = fanout_document(
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        topic=topic,
        correlation_id=request.state.correlation_id,
        idempotency_key=f"trigger:{body.idempotencyKey}" if body.idempotencyKey else None,
        exclude=None,
        workflow={
            "workflow_id": workflow.workflow_id,
            "key": workflow.key,
            "version": workflow.version,
            "payload": body.payload,
        },
    )
    stored, _ = await ctx.pipeline.submit_fanout(doc)
    return {"transactionId": stored["_id"], "topicKey": topic["key"]}
