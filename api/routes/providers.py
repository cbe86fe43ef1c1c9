"""Seed 000's provider RPCs: `manage/configure-provider`, `manage/get-providers`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.presenters import provider_view
from api.schemas import ConfigureProviderRequest, EmptyRequest
from shared.domain import ProviderType
from shared.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["providers"])


_REQUIRED_CREDENTIALS: dict[ProviderType, tuple[str, ...]] = {
    ProviderType.FCM: ("serviceAccountJson",),
    ProviderType.SENDGRID: ("apiKey", "fromEmail"),
}


def _check_credentials(provider: ProviderType, credentials: dict[str, Any]) -> None:
    if provider not in _REQUIRED_CREDENTIALS:
        supported = ", ".join(p.value for p in _REQUIRED_CREDENTIALS)
        raise ValidationFailed(
            [f"providerType {provider.value} has no delivery adapter yet (supported: {supported})"]
        )
    errors = [
        f"credentials.{name} is required for {provider.value}"
        for name in _REQUIRED_CREDENTIALS[provider]
        if not isinstance(credentials.get(name), str) or not credentials[name].strip()
    ]
    if provider is ProviderType.FCM and not errors:
        try:
            info = orjson.loads(credentials["serviceAccountJson"])
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            errors.append("credentials.serviceAccountJson must be a service-account JSON document")
        else:
            errors += [
                f"credentials.serviceAccountJson lacks {key}"
                for key in ("project_id", "client_email", "private_key")
                if not info.get(key)
            ]
    if provider is ProviderType.SENDGRID and not errors and "@" not in credentials["fromEmail"]:
        errors.append("credentials.fromEmail must be an e-mail address")
    if errors:
        raise ValidationFailed(errors)


@router.post("/configure-provider", summary="Configure a delivery provider")
async def configure_provider(
    body: ConfigureProviderRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Credentials are checked, then stored encrypted; they are never returned."""
    provider = ProviderType(body.providerType)
    _check_credentials(provider, body.credentials)
    doc = await ctx.db.providers.upsert(
        tenant_id=principal.tenant_id,
        provider_id=body.providerId or provider.value,
        fields={
            "provider_type": provider.value,
            "channel": provider.channel.value,
            "active": body.active,
            "priority": body.priority,
            "endpoint": body.endpoint.rstrip("/") if body.endpoint else None,
            "credentials_enc": ctx.cipher.encrypt(body.credentials),
            "credential_fields": sorted(body.credentials),
        },
    )
    return {"provider": provider_view(doc)}


@router.post("/get-providers", summary="List configured providers")
async def get_providers(body: EmptyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """Without secrets."""
    docs = await ctx.db.providers.list_all(tenant_id=principal.tenant_id)
    return {"providers": [provider_view(d) for d in docs]}
