"""API key RPCs under `/manage/`: create (the key shown once), list, revoke, rotate.

A key acts only in the tenant of the key that made it. Revocation reaches every API process
within `NOTIFY_API_KEY_CACHE_S` (each process reads a key at most that often); a rotated key
keeps working for its grace period, then expires. docs/security.md has the whole story.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.api_key_schemas import (
    CreateApiKeyRequest,
    KeyIdRequest,
    ListApiKeysRequest,
    RotateApiKeyRequest,
)
from api.deps import CtxDep, ManageDep
from api.openapi import COMMON, errors
from shared.db.api_keys import is_usable
from shared.db.base import Doc, utcnow
from shared.errors import NotFound
from shared.timefmt import iso_z

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["api keys"], responses=COMMON)


def key_view(doc: Doc) -> dict[str, Any]:
    """A key's metadata: never the key, never its hash."""
    if doc.get("revoked"):
        status = "revoked"
    elif is_usable(doc, now=utcnow()):
        status = "active"
    else:
        status = "expired"
    return {
        "keyId": doc["key_id"],
        "name": doc.get("name"),
        "prefix": doc.get("prefix"),
        "scopes": list(doc.get("scopes", [])),
        "environment": doc.get("environment") or "development",
        "rateLimit": doc.get("rate_limit"),
        "status": status,
        "createdAt": iso_z(doc.get("created_at")),
        "expiresAt": iso_z(doc.get("expires_at")),
        "revokedAt": iso_z(doc.get("revoked_at")),
        "rotatedTo": doc.get("rotated_to"),
        "rotatedFrom": doc.get("rotated_from"),
    }


@router.post("/create-api-key", summary="Create an API key (shown once)")
async def create_api_key(
    body: CreateApiKeyRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """The answer holds the key itself; only its hash is stored, so it cannot be shown again."""
    key, doc = await ctx.db.api_keys.create(
        tenant_id=principal.tenant_id,
        name=body.name,
        scopes=list(body.scopes),
        environment=body.environment,
        expires_at=body.expiresAt,
        rate_limit=body.rateLimit,
    )
    return {"apiKey": key, "key": key_view(doc)}


@router.post("/list-api-keys", summary="List API keys (prefix and metadata only)")
async def list_api_keys(
    body: ListApiKeysRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """Newest first."""
    docs = await ctx.db.api_keys.list_for_tenant(
        tenant_id=principal.tenant_id, include_inactive=body.includeInactive
    )
    return {"keys": [key_view(d) for d in docs]}


@router.post("/revoke-api-key", summary="Revoke an API key", responses=errors(404))
async def revoke_api_key(body: KeyIdRequest, ctx: CtxDep, principal: ManageDep) -> dict[str, Any]:
    """Refused everywhere within `NOTIFY_API_KEY_CACHE_S` seconds; revoking twice is harmless."""
    doc = await ctx.db.api_keys.revoke(tenant_id=principal.tenant_id, key_id=body.keyId)
    if doc is None:
        raise NotFound(f"API key {body.keyId} does not exist")
    return {"key": key_view(doc)}


@router.post(
    "/rotate-api-key",
    summary="Replace an API key; the old one works for a grace period",
    responses=errors(404),
)
async def rotate_api_key(
    body: RotateApiKeyRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """A new key with the same name, scopes, environment and limit; the old one expires after
    `gracePeriodSeconds` (default 24 h, at most 30 days; 0 ends it now)."""
    rotated = await ctx.db.api_keys.rotate(
        tenant_id=principal.tenant_id, key_id=body.keyId, grace_s=body.gracePeriodSeconds
    )
    if rotated is None:
        raise NotFound(f"API key {body.keyId} does not exist or is no longer usable")
    key, new, old = rotated
    return {"apiKey": key, "key": key_view(new), "previous": key_view(old)}
