"""Seed 000's user-facing RPCs built so far: push devices and registered channels."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter

from api.context import AppContext
from api.deps import CtxDep, UserDep
from api.openapi import COMMON
from api.schemas import EmptyRequest, RegisterDeviceRequest, UnregisterDeviceRequest
from shared.db.base import utcnow
from shared.db.subscribers import CHAT_FIELDS
from shared.errors import Conflict

router = APIRouter(prefix="/api/v1/notifications", tags=["user"], responses=COMMON)


async def ensure_subscriber(ctx: AppContext, *, tenant_id: str, user_id: str) -> None:
    """Create the calling user's subscriber on first use (registrations need one)."""
    repo = ctx.db.subscribers
    if await repo.get(tenant_id=tenant_id, subscriber_id=user_id) is None:
        with contextlib.suppress(Conflict):  # a concurrent registration created it first
            await repo.create(tenant_id=tenant_id, subscriber_id=user_id, profile={})


@router.post(
    "/register-push-device",
    summary="Register an FCM token (or an APNs token, `apnsToken`) for the calling user",
)
async def register_push_device(
    body: RegisterDeviceRequest, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Creates the subscriber on first use; a device or token registered again is replaced."""
    assert user.user_id is not None
    repo = ctx.db.subscribers
    await ensure_subscriber(ctx, tenant_id=user.tenant_id, user_id=user.user_id)
    device = {
        "token": body.token,
        "platform": body.platform,
        "device_id": body.deviceId,
        "provider": body.provider,  # which provider type delivers to this token
        "registered_at": utcnow(),
    }
    await repo.add_device(tenant_id=user.tenant_id, subscriber_id=user.user_id, device=device)
    return {"registered": True, "deviceId": body.deviceId}


@router.post("/unregister-push-device", summary="Remove an FCM (or APNs) token of the calling user")
async def unregister_push_device(
    body: UnregisterDeviceRequest, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Idempotent: `removed` says whether the token was there."""
    removed = await ctx.db.subscribers.remove_token(
        tenant_id=user.tenant_id, token=body.token, subscriber_id=user.user_id
    )
    return {"removed": removed > 0}


@router.post("/get-registered-channels", summary="Channels the calling user can be reached on")
async def get_registered_channels(body: EmptyRequest, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """Seed shape: `{channels: [{channel, registered, credentialCount}]}`."""
    assert user.user_id is not None
    doc = await ctx.db.subscribers.get(tenant_id=user.tenant_id, subscriber_id=user.user_id) or {}
    # A suppressed e-mail address or phone number cannot be reached: it does not count.
    suppressed = {
        (m.get("channel"), m.get("address"))
        for m in doc.get("suppressed") or []
        if isinstance(m, dict)
    }
    email, phone = doc.get("email"), doc.get("phone")
    chat = doc.get("chat") or {}
    counts = {
        "PUSH": len(doc.get("devices", [])),
        "IN_APP": 1 if doc else 0,
        "EMAIL": 1 if email and ("email", email) not in suppressed else 0,
        "SMS": 1 if phone and ("sms", phone) not in suppressed else 0,
        "CHAT": sum(1 for field in CHAT_FIELDS if chat.get(field)),
    }
    return {
        "channels": [
            {"channel": name, "registered": count > 0, "credentialCount": count}
            for name, count in counts.items()
        ]
    }
