"""FastAPI dependencies: the context, authentication and the acting user."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Request

from api.context import AppContext, Principal
from api.inbox.session import SessionRejected, SessionTokens, looks_like_session_token
from shared.errors import Forbidden, Unauthorized, ValidationFailed

_KEY_CACHE_S = 30.0  # a revoked key stops working within this long
_INVALID_TOKEN = "Invalid or missing authentication token"


def get_ctx(request: Request) -> AppContext:
    """The application's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def _presented_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("apikey", "bearer") and value.strip():
        return value.strip()
    return None


async def _principal_for_key(ctx: AppContext, key: str) -> Principal | None:
    now = time.monotonic()
    cached = ctx.key_cache.get(key)
    if cached and cached[0] > now:
        return cached[1]
    doc = await ctx.db.api_keys.find(key=key)
    principal = (
        Principal(
            tenant_id=doc["tenant_id"],
            scopes=frozenset(doc.get("scopes", [])),
            key_label=f"{doc.get('name', 'key')}:{doc['key_hash'][:12]}",
            environment=str(doc.get("environment") or "development"),
        )
        if doc
        else None
    )
    if len(ctx.key_cache) > 10_000:
        ctx.key_cache.clear()
    ctx.key_cache[key] = (now + _KEY_CACHE_S, principal)
    return principal


def _gateway_scopes(ctx: AppContext, request: Request) -> frozenset[str]:
    """Roles the gateway asserted (gateway mode trusts them as it trusts X-User-ID)."""
    raw = request.headers.get(ctx.settings.gateway_roles_header, "")
    roles = {r.strip().lower() for r in raw.split(",") if r.strip()}
    return frozenset({"admin"}) if ctx.settings.gateway_admin_role.lower() in roles else frozenset()


async def authenticate(
    ctx: CtxDep,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header()] = None,
) -> Principal:
    """Resolve the caller from `Authorization: ApiKey|Bearer <key>` (or gateway headers).

    In gateway mode a request without a key is trusted as the gateway says: X-User-ID and
    X-Tenant-ID name the caller, and the roles header (`X-User-Roles: admin` by default)
    grants the admin scope for /manage/.
    """
    key = _presented_key(authorization)
    if key is None:
        if ctx.settings.gateway_mode and x_user_id and x_tenant_id:
            return Principal(
                tenant_id=x_tenant_id,
                scopes=_gateway_scopes(ctx, request),
                user_id=x_user_id,
                via_gateway=True,
                key_label=f"gateway:{x_user_id}",
            )
        raise Unauthorized(_INVALID_TOKEN)
    principal = await _principal_for_key(ctx, key)
    if principal is None:
        raise Unauthorized(_INVALID_TOKEN)
    if x_tenant_id is not None and x_tenant_id != principal.tenant_id:
        raise Forbidden("X-Tenant-ID does not match the API key's tenant")
    if x_user_id:
        return Principal(
            tenant_id=principal.tenant_id,
            scopes=principal.scopes,
            user_id=x_user_id,
            via_gateway=True,
            key_label=principal.key_label,
            environment=principal.environment,
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """Admin scope, for /manage/."""
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin API key")
    return principal


async def require_user(principal: PrincipalDep) -> Principal:
    """A user named by X-User-ID, for the user-facing RPCs."""
    if not principal.user_id:
        raise ValidationFailed(["X-User-ID header is required for this operation"])
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
UserDep = Annotated[Principal, Depends(require_user)]


async def require_inbox_user(
    ctx: CtxDep,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header()] = None,
) -> Principal:
    """The inbox RPCs' caller: the subscriber of an inbox session token
    (`Authorization: Bearer <sessionToken>`), else a user as `require_user` finds one.

    A session token acts only for its own subscriber: naming another user or tenant in the
    gateway headers is refused, and no other route accepts it (it is not an API key).
    """
    token = _presented_key(authorization)
    if token is None or not looks_like_session_token(token):
        return await require_user(
            await authenticate(ctx, request, authorization, x_user_id, x_tenant_id)
        )
    try:
        session = SessionTokens.from_settings(ctx.settings).verify(token)
    except SessionRejected as exc:
        raise Unauthorized(exc.reason) from None
    if x_tenant_id is not None and x_tenant_id != session.tenant_id:
        raise Forbidden("X-Tenant-ID does not match the session's tenant")
    if x_user_id is not None and x_user_id != session.subscriber_id:
        raise Forbidden("a session token acts only for its own subscriber")
    return Principal(
        tenant_id=session.tenant_id,
        scopes=frozenset(),
        user_id=session.subscriber_id,
        key_label=f"session:{session.subscriber_id}",
        environment=session.environment,
    )


InboxUserDep = Annotated[Principal, Depends(require_inbox_user)]
