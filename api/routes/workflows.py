"""Seed 000's workflow RPCs: create, update, get, list, delete. Every edit is a new version in
development and a pending change; production keys read, and trigger, what was promoted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.environments import require_development
from api.openapi import COMMON, errors
from api.workflow_presenters import workflow_view
from api.workflow_schemas import (
    CreateWorkflowRequest,
    GetWorkflowRequest,
    ListWorkflowsRequest,
    UpdateWorkflowRequest,
    WorkflowIdRequest,
)
from shared.db.base import Doc
from shared.db.workflows import VersionTaken
from shared.errors import Conflict, NotFound
from shared.workflow_model import WorkflowDefinition, check, key_from_name

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["workflows"], responses=COMMON)

_EDIT_ATTEMPTS = 5


async def current_workflow(
    ctx: CtxDep, *, tenant_id: str, environment: str, workflow_id: str
) -> Doc:
    """The workflow's current version; NotFound if it never existed or was deleted."""
    doc = await ctx.db.workflows.current(
        tenant_id=tenant_id, environment=environment, workflow_id=workflow_id
    )
    if doc is None or doc.get("deleted"):
        raise NotFound(f"workflow {workflow_id} does not exist")
    return doc


@router.post("/create-workflow", summary="Create a workflow (a pending change)")
async def create_workflow(
    body: CreateWorkflowRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Version 1 in development, with a `key` derived from the name (unique per environment)."""
    require_development(principal, what="workflows")
    definition = body.workflow.to_definition()
    check(definition)
    doc = await ctx.db.workflows.create(
        tenant_id=principal.tenant_id,
        key=key_from_name(definition.name),
        definition=definition.stored(),
        changed_by=principal.key_label,
    )
    return {"workflow": workflow_view(doc)}


async def store_next_version(
    ctx: CtxDep,
    principal: AdminDep,
    *,
    workflow_id: str,
    changes: dict[str, Any],
    deleted: bool,
) -> Doc:
    """The current version with `changes` applied, checked, stored as the next version; on a
    concurrent edit, applied again to the newer version."""
    require_development(principal, what="workflows")
    for _ in range(_EDIT_ATTEMPTS):
        current = await current_workflow(
            ctx,
            tenant_id=principal.tenant_id,
            environment=principal.environment,
            workflow_id=workflow_id,
        )
        definition = WorkflowDefinition.model_validate({**current, **changes})
        check(definition)
        try:
            return await ctx.db.workflows.add_version(
                current=current,
                definition=definition.stored(),
                deleted=deleted,
                changed_by=principal.key_label,
            )
        except VersionTaken:
            continue
    raise Conflict(f"workflow {workflow_id} keeps changing under this edit: try again")


@router.post(
    "/update-workflow",
    summary="Update a workflow (partial; a new version)",
    responses=errors(404, 409),
)
async def update_workflow(
    body: UpdateWorkflowRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The fields given replace the current ones (`steps` as a whole); the result is checked
    like a new workflow and stored as the next version."""
    doc = await store_next_version(
        ctx,
        principal,
        workflow_id=body.workflowId,
        changes=body.workflow.stored_fields(),
        deleted=False,
    )
    return {"workflow": workflow_view(doc)}


@router.post("/get-workflow", summary="Get a workflow", responses=errors(404))
async def get_workflow(
    body: GetWorkflowRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The current version in the key's environment, or a given version (even a deleted
    workflow's older versions stay readable that way)."""
    if body.version is None:
        doc = await current_workflow(
            ctx,
            tenant_id=principal.tenant_id,
            environment=principal.environment,
            workflow_id=body.workflowId,
        )
    else:
        found = await ctx.db.workflows.version(
            tenant_id=principal.tenant_id,
            environment=principal.environment,
            workflow_id=body.workflowId,
            version=body.version,
        )
        if found is None or found.get("deleted"):
            raise NotFound(f"workflow {body.workflowId} version {body.version} does not exist")
        doc = found
    return {"workflow": workflow_view(doc)}


@router.post("/list-workflows", summary="List workflows")
async def list_workflows(
    body: ListWorkflowsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Current versions, oldest workflow first; `tags` keeps those with any of them."""
    docs = await ctx.db.workflows.list_current(
        tenant_id=principal.tenant_id, environment=principal.environment, tags=body.tags
    )
    start = (body.page - 1) * body.pageSize
    return {
        "workflows": [workflow_view(d) for d in docs[start : start + body.pageSize]],
        "page": body.page,
        "pageSize": body.pageSize,
        "totalCount": len(docs),
        "hasMore": start + body.pageSize < len(docs),
    }


@router.post(
    "/delete-workflow",
    summary="Delete a workflow (a pending change)",
    responses=errors(404, 409),
)
async def delete_workflow(
    body: WorkflowIdRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Stores a deleting version: triggers stop finding it; earlier versions stay readable."""
    doc = await store_next_version(
        ctx, principal, workflow_id=body.workflowId, changes={}, deleted=True
    )
    return {"workflowId": doc["workflow_id"], "version": doc["version"], "deleted": True}
