"""Development-only endpoints: what the sandbox provider 'sent'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON
from shared.timefmt import iso_z

router = APIRouter(prefix="/dev", tags=["dev"], responses=COMMON)


@router.get("/outbox", summary="Messages accepted by the sandbox provider")
async def outbox(
    ctx: CtxDep, principal: AdminDep, limit: int = Query(default=50, ge=1, le=500)
) -> dict[str, Any]:
    """Newest first, for the caller's tenant."""
    docs = await ctx.db.dev_outbox.list_recent(tenant_id=principal.tenant_id, limit=limit)
    return {
        "messages": [
            {
                **{k: v for k, v in d.items() if k not in ("_id", "created_at")},
                "id": d["_id"],
                "createdAt": iso_z(d.get("created_at")),
            }
            for d in docs
        ]
    }
