"""The suppression list (our extension): `manage/list-suppressions`, `manage/remove-suppression`.

Addresses get on the list when a provider proves them dead (or the recipient opted out of SMS);
sends to them then end without a provider call. An operator who fixed an address removes it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.presenters import suppression_view
from api.suppression_schemas import ListSuppressionsRequest, RemoveSuppressionRequest
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["suppressions"], responses=COMMON)


@router.post("/list-suppressions", summary="List suppressed e-mail addresses and phone numbers")
async def list_suppressions(
    body: ListSuppressionsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """A page, in the order the addresses were suppressed; `channel` narrows it."""
    items, total = await ctx.db.suppressions.list_page(
        tenant_id=principal.tenant_id,
        channel=body.channel.lower() if body.channel else None,
        page=body.page,
        page_size=body.pageSize,
    )
    return {
        "suppressions": [suppression_view(d) for d in items],
        "page": body.page,
        "pageSize": body.pageSize,
        "totalCount": total,
        "hasMore": body.page * body.pageSize < total,
    }


@router.post(
    "/remove-suppression",
    summary="Take an address off the suppression list",
    responses=errors(404),
)
async def remove_suppression(
    body: RemoveSuppressionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """404 when the address is not on the list; sends to it are made again from now on."""
    removed = await ctx.db.suppressions.remove(
        tenant_id=principal.tenant_id, channel=body.channel.lower(), address=body.address
    )
    if not removed:
        raise NotFound(f"{body.channel} address {body.address} is not suppressed")
    return {"removed": True, "channel": body.channel, "address": body.address}
