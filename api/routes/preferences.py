"""Preferences: seed 000's `get-preferences` / `update-preferences` for the calling user, and
the admin twins under `manage/` for any subscriber (docs/audience.md).

Stored on the subscriber document, only where a user said something (`shared.preferences`);
the delivery worker enforces them when each notification is due.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.context import AppContext
from api.deps import CtxDep, ManageDep, UserDep
from api.openapi import COMMON, errors
from api.preference_schemas import (
    SubscriberPreferencesRequest,
    UpdatePreferencesRequest,
    UpdateSubscriberPreferencesRequest,
)
from api.routes.user import ensure_subscriber
from api.schemas import EmptyRequest
from shared.db.base import Doc
from shared.errors import NotFound
from shared.preferences import preferences_view, switch_path

router = APIRouter(prefix="/api/v1/notifications", tags=["preferences"], responses=COMMON)


async def _switch(
    ctx: AppContext, *, tenant_id: str, user_id: str, body: UpdatePreferencesRequest
) -> Doc | None:
    """Set one switch; the subscriber after it, or None if there is no such subscriber."""
    return await ctx.db.subscribers.set_preference(
        tenant_id=tenant_id,
        subscriber_id=user_id,
        path=switch_path(body.channel_enum, body.category),
        enabled=body.enabled,
    )


@router.post("/get-preferences", summary="The calling user's channel and category switches")
async def get_preferences(body: EmptyRequest, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """All five channels, always; everything is enabled until the user turns it off."""
    assert user.user_id is not None
    doc = await ctx.db.subscribers.get(tenant_id=user.tenant_id, subscriber_id=user.user_id)
    return {"preferences": preferences_view(doc)}


@router.post("/update-preferences", summary="Turn a channel, or one category on it, on or off")
async def update_preferences(
    body: UpdatePreferencesRequest, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Creates the calling user's subscriber on first use (like `register-push-device`);
    answers the updated preferences."""
    assert user.user_id is not None
    await ensure_subscriber(ctx, tenant_id=user.tenant_id, user_id=user.user_id)
    doc = await _switch(ctx, tenant_id=user.tenant_id, user_id=user.user_id, body=body)
    return {"preferences": preferences_view(doc)}


@router.post(
    "/manage/get-subscriber-preferences",
    summary="A subscriber's channel and category switches",
    responses=errors(404),
)
async def get_subscriber_preferences(
    body: SubscriberPreferencesRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """404 if there is no such subscriber."""
    doc = await ctx.db.subscribers.get(tenant_id=principal.tenant_id, subscriber_id=body.userId)
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"userId": body.userId, "preferences": preferences_view(doc)}


@router.post(
    "/manage/update-subscriber-preferences",
    summary="Turn a subscriber's channel, or one category on it, on or off",
    responses=errors(404),
)
async def update_subscriber_preferences(
    body: UpdateSubscriberPreferencesRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """404 if there is no such subscriber (an admin creates it with `manage/create-subscriber`)."""
    doc = await _switch(ctx, tenant_id=principal.tenant_id, user_id=body.userId, body=body)
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"userId": body.userId, "preferences": preferences_view(doc)}
