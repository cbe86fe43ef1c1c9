"""User RPCs for chat addresses: `register-chat-channel`, `unregister-chat-channel` (extension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.chat_schemas import RegisterChatChannelRequest, UnregisterChatChannelRequest
from api.deps import CtxDep, UserDep
from api.openapi import COMMON
from api.presenters import chat_view
from api.routes.user import ensure_subscriber

router = APIRouter(prefix="/api/v1/notifications", tags=["user"], responses=COMMON)


@router.post(
    "/register-chat-channel",
    summary="Register a Slack webhook or channel id, or a Discord webhook, for the calling user",
)
async def register_chat_channel(
    body: RegisterChatChannelRequest, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Creates the subscriber on first use; an address of the same kind is replaced."""
    assert user.user_id is not None
    await ensure_subscriber(ctx, tenant_id=user.tenant_id, user_id=user.user_id)
    doc = await ctx.db.subscribers.update_profile(
        tenant_id=user.tenant_id,
        subscriber_id=user.user_id,
        profile={f"chat.{body.field}": body.address},
    )
    return {
        "registered": True,
        "provider": body.provider,
        "chat": chat_view((doc or {}).get("chat") or {}),
    }


@router.post(
    "/unregister-chat-channel",
    summary="Remove the calling user's Slack or Discord addresses (or only the one given)",
)
async def unregister_chat_channel(
    body: UnregisterChatChannelRequest, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Idempotent: `removed` says whether an address was there."""
    assert user.user_id is not None
    removed = False
    for field, address in body.fields():
        removed |= await ctx.db.subscribers.remove_chat_address(
            tenant_id=user.tenant_id, subscriber_id=user.user_id, field=field, address=address
        )
    return {"removed": removed}
