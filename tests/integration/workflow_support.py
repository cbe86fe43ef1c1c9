"""Shared steps of the workflow, environment and activity tests (through the public API)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import httpx

from shared.db.base import utcnow
from tests.integration.helpers import FINAL_RESULTS, ok_rpc
from tests.support import System, Tenant, wait_for

# Seed 000's example, verbatim.
WELCOME: dict[str, Any] = {
    "name": "Welcome Notification",
    "description": "Sent when a user completes onboarding",
    "active": True,
    "critical": False,
    "tags": ["onboarding"],
    "steps": [
        {
            "channel": "IN_APP",
            "title": "Welcome!",
            "body": "Welcome to your health coaching journey",
        },
        {"channel": "PUSH", "title": "Welcome!", "body": "Tap to start your first session"},
    ],
    "preferenceSettings": {"email": True, "push": True, "inApp": True, "sms": False, "chat": False},
}


def welcome(**changes: Any) -> dict[str, Any]:
    """The seed's workflow with some fields changed."""
    return {**copy.deepcopy(WELCOME), **changes}


async def create_workflow(tenant: Tenant, workflow: dict[str, Any]) -> dict[str, Any]:
    """`manage/create-workflow`; the stored workflow."""
    created = await ok_rpc(tenant, "manage/create-workflow", {"workflow": workflow})
    view: dict[str, Any] = created["workflow"]
    return view


async def in_app_user(tenant: Tenant, user_id: str) -> None:
    """A subscriber (in-app needs nothing more)."""
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user_id, "subscriberData": {}})


async def push_device(tenant: Tenant, user_id: str, token: str = "token-1") -> None:
    """The user registers a phone (which creates the subscriber if needed)."""
    await ok_rpc(
        tenant,
        "register-push-device",
        {"fcmToken": token, "platform": "IOS", "deviceId": f"phone-{token}"},
        headers=tenant.user_headers(user_id),
    )


async def production_key(system: System, tenant: Tenant) -> Tenant:
    """The same tenant through an admin key that acts in production (as `create-api-key`
    with `environment: production` makes one)."""
    assert system.db is not None
    key = f"nk_prod_{secrets.token_urlsafe(16)}"
    await system.db.api_keys.ensure(
        key=key,
        tenant_id=tenant.tenant_id,
        scopes=["admin"],
        name="production",
        environment="production",
    )
    client = httpx.AsyncClient(
        base_url=system.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
    )
    return Tenant(tenant_id=tenant.tenant_id, api_key=key, client=client)


async def wait_steps_final(
    tenant: Tenant, transaction_id: str, *, timeout_s: float = 20
) -> dict[str, Any]:
    """Poll get-delivery-status until every step of every recipient is final."""

    async def probe() -> dict[str, Any] | None:
        data = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": transaction_id})
        rows = [n for step in data["steps"] for n in step["notifications"]]
        return data if all(n["result"] in FINAL_RESULTS for n in rows) else None

    return await wait_for(probe, timeout_s=timeout_s, what=f"every step of {transaction_id}")


async def mark_read(system: System, tenant: Tenant, notification_id: str) -> None:
    """The user reads an in-app message.

    Written to `inbox_messages` directly, as `mark-inbox-message {status: READ}` of the inbox
    work sets its `read` and `seen` flags; that RPC is not on this branch yet.
    """
    assert system.db is not None
    result = await system.db.inbox.col.update_one(
        {"tenant_id": tenant.tenant_id, "notification_id": notification_id},
        {"$set": {"read": True, "seen": True, "read_at": utcnow()}},
    )
    assert result.matched_count == 1, f"no inbox item for {notification_id}"


def step_rows(status: dict[str, Any], step: int) -> list[dict[str, Any]]:
    """The notifications of one step in a get-delivery-status answer."""
    [found] = [s for s in status["steps"] if s["step"] == step]
    rows: list[dict[str, Any]] = found["notifications"]
    return rows
