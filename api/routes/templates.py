"""Templates (our extension, camelCase like seed 000): create, get, list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.presenters import template_view
from api.schemas import CreateTemplateRequest, EmptyRequest, GetTemplateRequest
from shared.domain import Channel
from shared.errors import NotFound
from shared.rendering import check_syntax

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["templates"], responses=COMMON)


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


@router.post(
    "/get-template", summary="Get a template (latest or a given version)", responses=errors(404)
)
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
