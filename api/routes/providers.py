"""Seed 000's provider RPCs: `manage/configure-provider`, `manage/get-providers`."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from fastapi import APIRouter

from api.deps import AdminDep, CtxDep
from api.openapi import COMMON
from api.presenters import provider_view
from api.schemas import ConfigureProviderRequest, GetProvidersRequest
from shared.crypto import CredentialCipher
from shared.db.base import Doc
from shared.errors import ValidationFailed
from shared.providers.registry import spec_for, supported_types
from shared.providers.spec import InvalidCredentials

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["providers"], responses=COMMON)


def _stored_credentials(cipher: CredentialCipher, doc: Doc) -> dict[str, Any] | None:
    # None when they cannot be read (another secret key): the view then masks every field.
    try:
        return cipher.decrypt(str(doc["credentials_enc"]))
    except (KeyError, InvalidToken):
        return None


@router.post("/configure-provider", summary="Configure a delivery provider")
async def configure_provider(
    body: ConfigureProviderRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Credentials are checked against the provider's spec, then stored encrypted, in the
    environment of the API key (each environment has its own configs)."""
    provider = body.providerType
    spec = spec_for(provider.value)
    if spec is None:
        # Seed 000 names seven providers; the API accepts each name, the build may lack adapters.
        supported = ", ".join(supported_types())
        raise ValidationFailed(
            [f"providerType {provider.value} has no delivery adapter yet (supported: {supported})"]
        )
    try:
        credentials = spec.parse_credentials(body.credentials)
    except InvalidCredentials as exc:
        raise ValidationFailed(exc.messages) from None
    # A multi-channel route (Novu) is stored under each channel it serves: an array, which
    # the channel look-up matches element by element.
    served = sorted(c.value for c in spec.channels_of(credentials))
    channel: str | list[str] = served if len(spec.channels) > 1 else served[0]
    doc = await ctx.db.providers.upsert(
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        provider_id=body.providerId or provider.value,
        fields={
            "provider_type": provider.value,
            "channel": channel,
            "active": body.active,
            "priority": body.priority,
            "endpoint": body.endpoint.rstrip("/") if body.endpoint else None,
            "credentials_enc": ctx.cipher.encrypt(body.credentials),
            "credential_fields": sorted(body.credentials),
        },
    )
    return {"provider": provider_view(doc, credentials=body.credentials)}


@router.post(
    "/get-providers",
    summary="List active providers (with includeInactive: true, inactive ones too)",
)
async def get_providers(
    body: GetProvidersRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Active provider configs, as seed 000 lists them; `{"includeInactive": true}` lists all.

    Credentials come back masked: secret fields read `********`, the others (a sender address)
    as configured.
    """
    docs = await ctx.db.providers.list_configs(
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        include_inactive=body.includeInactive,
    )
    return {
        "providers": [
            provider_view(doc, credentials=_stored_credentials(ctx.cipher, doc)) for doc in docs
        ]
    }
