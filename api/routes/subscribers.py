"""Seed 000's subscriber RPCs under `manage/`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.chat_schemas import CHAT_API_FIELDS
from api.context import AppContext
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.presenters import subscriber_view
from api.schemas import (
    CreateSubscriberRequest,
    PageRequest,
    UpdateSubscriberRequest,
    UserIdRequest,
)
from shared.errors import NotFound
from shared.providers.novu_jobs import queue_subscriber_mirror

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["subscribers"], responses=COMMON)


_PROFILE_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phone": "phone",
    "locale": "locale",
    "timezone": "timezone",
    "avatar": "avatar",
    "data": "data",
}


def _profile(data: Any, *, nested: bool) -> dict[str, Any]:
    """Stored field names; `chat` as one object (create) or field by field (update)."""
    given = data.model_dump(exclude_unset=True)
    chat = given.pop("chat", None)
    profile = {_PROFILE_FIELDS[k]: v for k, v in given.items() if k != "quietHours"}
    if "quietHours" in given:  # replaced whole; null removes it
        quiet = data.quietHours
        profile["quiet_hours"] = quiet.to_document() if quiet is not None else None
    if chat is not None:
        stored = {CHAT_API_FIELDS[k]: v for k, v in chat.items()}
        if nested:
            profile["chat"] = {k: v for k, v in stored.items() if v is not None}
        else:
            # Only the addresses given change; null clears one (a target skips empty fields).
            profile.update({f"chat.{k}": v for k, v in stored.items()})
    return profile


async def _refresh_suppression(ctx: AppContext, tenant_id: str, doc: dict[str, Any]) -> None:
    """An e-mail address or phone number just set may be on the suppression list (or no longer)."""
    await ctx.db.suppressions.refresh_marks(
        tenant_id=tenant_id, subscriber_id=doc["subscriber_id"], profile=doc
    )


async def _mirror_to_novu(ctx: AppContext, tenant_id: str, subscriber_id: str) -> None:
    """Queue the change for the tenant's Novu routes (docs/novu.md); Novu is not waited for.

    The change is stored first: if the job cannot be queued the RPC answers 503, and its
    retry (the same change again) queues it.
    """
    await queue_subscriber_mirror(
        providers=ctx.db.providers,
        broker=ctx.broker,
        tenant_id=tenant_id,
        subscriber_id=subscriber_id,
    )


@router.post("/create-subscriber", summary="Create a subscriber", responses=errors(409))
async def create_subscriber(
    body: CreateSubscriberRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """409 if the user exists already."""
    doc = await ctx.db.subscribers.create(
        tenant_id=principal.tenant_id,
        subscriber_id=body.userId,
        profile=_profile(body.subscriberData, nested=True),
    )
    if body.subscriberData.email is not None or body.subscriberData.phone is not None:
        await _refresh_suppression(ctx, principal.tenant_id, doc)
        doc = (
            await ctx.db.subscribers.get(tenant_id=principal.tenant_id, subscriber_id=body.userId)
            or doc
        )
    return {"subscriber": subscriber_view(doc)}


@router.post("/get-subscriber", summary="Get a subscriber", responses=errors(404))
async def get_subscriber(body: UserIdRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """404 if there is none."""
    doc = await ctx.db.subscribers.get(tenant_id=principal.tenant_id, subscriber_id=body.userId)
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    return {"subscriber": subscriber_view(doc)}


@router.post(
    "/update-subscriber-data", summary="Update a subscriber's profile", responses=errors(404)
)
async def update_subscriber(
    body: UpdateSubscriberRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Only the given fields change."""
    doc = await ctx.db.subscribers.update_profile(
        tenant_id=principal.tenant_id,
        subscriber_id=body.userId,
        profile=_profile(body.subscriberData, nested=False),
    )
    if doc is None:
        raise NotFound(f"subscriber {body.userId} does not exist")
    given = body.subscriberData
    if given.email is not None or given.phone is not None:
        await _refresh_suppression(ctx, principal.tenant_id, doc)
        doc = (
            await ctx.db.subscribers.get(tenant_id=principal.tenant_id, subscriber_id=body.userId)
            or doc
        )
    await _mirror_to_novu(ctx, principal.tenant_id, body.userId)
    return {"subscriber": subscriber_view(doc)}


@router.post("/delete-subscriber", summary="Delete a subscriber", responses=errors(404))
async def delete_subscriber(
    body: UserIdRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """404 if there is none."""
    if not await ctx.db.subscribers.delete(
        tenant_id=principal.tenant_id, subscriber_id=body.userId
    ):
        raise NotFound(f"subscriber {body.userId} does not exist")
    # Topic sends reach subscribers only: a deleted one leaves every topic.
    await ctx.db.topic_subscriptions.remove_subscriber(
        tenant_id=principal.tenant_id, subscriber_id=body.userId
    )
    await _mirror_to_novu(ctx, principal.tenant_id, body.userId)
    return {"deleted": True, "userId": body.userId}


@router.post("/list-subscribers", summary="List subscribers")
async def list_subscribers(body: PageRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """A page, in creation order."""
    items, total = await ctx.db.subscribers.list_page(
        tenant_id=principal.tenant_id, page=body.page, page_size=body.pageSize
    )
    return {
        "subscribers": [subscriber_view(d) for d in items],
        "page": body.page,
        "pageSize": body.pageSize,
        "totalCount": total,
        "hasMore": body.page * body.pageSize < total,
    }
