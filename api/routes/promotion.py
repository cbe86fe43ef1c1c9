"""Seed 000's promotion RPCs: the pending development changes and promoting them.

A change is the development version one edit stored (`shared.db.versioned`). Promoting copies
that exact version to production in one insert, so each change lands whole or not at all,
and promoting twice is harmless. Any admin key of the tenant may promote, whichever
environment it acts in: promotion is the one way into production.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.schemas import EmptyRequest
from api.workflow_presenters import change_view
from api.workflow_schemas import ChangeRequest
from shared.db.base import Doc
from shared.db.versioned import VersionedRepo
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["promotion"], responses=COMMON)


def _repos(ctx: CtxDep) -> list[VersionedRepo]:
    return [ctx.db.workflows, ctx.db.templates]


async def _pending(ctx: CtxDep, tenant_id: str) -> list[tuple[VersionedRepo, Doc]]:
    """Every pending change, oldest first (promoting in this order replays the edits)."""
    found = [
        (repo, doc)
        for repo in _repos(ctx)
        for doc in await repo.pending_changes(tenant_id=tenant_id)
    ]
    found.sort(key=lambda pair: (pair[1]["created_at"], pair[1]["change_id"]))
    return found


@router.post("/get-pending-changes", summary="List pending promotions")
async def get_pending_changes(
    body: EmptyRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Development edits not promoted yet, oldest first."""
    pending = await _pending(ctx, principal.tenant_id)
    return {"changes": [change_view(doc, entity_type=repo.entity_type) for repo, doc in pending]}


@router.post("/promote-change", summary="Promote a single change", responses=errors(404, 409))
async def promote_change(body: ChangeRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """Copies the change's exact version to production; a change promoted before answers
    `promoted: false` and changes nothing."""
    for repo in _repos(ctx):
        doc = await repo.find_change(tenant_id=principal.tenant_id, change_id=body.changeId)
        if doc is None:
            continue
        copied = await repo.promote(change=doc, promoted_by=principal.key_label)
        view = change_view(doc, entity_type=repo.entity_type)
        view["promoted"] = True
        return {"change": view, "promoted": copied}
    raise NotFound(f"change {body.changeId} does not exist")


@router.post("/promote-all-changes", summary="Promote all pending changes", responses=errors(409))
async def promote_all_changes(
    body: EmptyRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Every pending change, oldest first; answers how many were promoted."""
    pending = await _pending(ctx, principal.tenant_id)
    promoted = 0
    for repo, doc in pending:
        if await repo.promote(change=doc, promoted_by=principal.key_label):
            promoted += 1
    return {"promoted": promoted}
