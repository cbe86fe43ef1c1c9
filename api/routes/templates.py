"""Templates (our extension, camelCase like seed 000): create, get, list.

Templates live per environment: created in development (each version a pending change),
promoted to production; a key reads its own environment's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.environments import require_development
from api.openapi import COMMON, errors
from api.presenters import template_view
from api.schemas import CreateTemplateRequest, EmptyRequest, GetTemplateRequest
from shared.domain import Channel
from shared.errors import NotFound
from shared.rendering import check_syntax

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["templates"], responses=COMMON)


@router.post("/create-template", summary="Create a template version (a pending change)")
async def create_template(
    body: CreateTemplateRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Every call stores a new version (of the variant in `locale`); syntax is checked first."""
    require_development(principal, what="templates")
    fields = {"subject": body.subject, "title": body.title, "body": body.body}
    check_syntax(fields)
    doc = await ctx.db.templates.create_version(
        tenant_id=principal.tenant_id,
        template_code=body.templateCode,
        fields={**fields, "channel": Channel.from_api(body.channel).value, "locale": body.locale},
        changed_by=principal.key_label,
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
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        template_code=body.templateCode,
        version=body.version,
    )
    if doc is None:
        raise NotFound(f"template {body.templateCode} does not exist")
    return {"template": template_view(doc)}


@router.post("/list-templates", summary="List templates (latest versions, with their locales)")
async def list_templates(body: EmptyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """The latest version of each template code, and the locales it has variants in."""
    rows = await ctx.db.templates.list_latest(
        tenant_id=principal.tenant_id, environment=principal.environment
    )
    return {"templates": [{**template_view(doc), "locales": locales} for doc, locales in rows]}
