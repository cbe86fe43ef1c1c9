"""Tenant settings (our extension): today the default locale templates fall back to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON
from api.schemas import EmptyRequest
from api.workflow_schemas import TenantSettingsRequest
from shared.db.base import Doc

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["templates"], responses=COMMON)


def _view(doc: Doc) -> dict[str, Any]:
    return {"defaultLocale": doc.get("default_locale")}


@router.post("/get-tenant-settings", summary="The tenant's settings (default locale)")
async def get_tenant_settings(
    body: EmptyRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """`defaultLocale`: the locale a template falls back to after the subscriber's own."""
    return _view(await ctx.db.tenant_settings.get(tenant_id=principal.tenant_id))


@router.post("/update-tenant-settings", summary="Set the tenant's default locale")
async def update_tenant_settings(
    body: TenantSettingsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Applies to both environments (settings belong to the tenant); reaches every API
    process within 30 s."""
    doc = await ctx.db.tenant_settings.update(
        tenant_id=principal.tenant_id, fields={"default_locale": body.defaultLocale}
    )
    return _view(doc)
