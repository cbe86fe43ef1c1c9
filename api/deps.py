"""FastAPI dependencies: the context, authentication and the acting user."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.requests import HTTPConnection

from api.context import AppContext, Principal
from api.inbox.session import SessionRejected, SessionTokens, looks_like_session_token
from shared.db.base import utcnow
from shared.errors import Forbidden, Unauthorized, ValidationFailed

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
    """The key's principal, read at most once per `NOTIFY_API_KEY_CACHE_S` per process.

    That cache's lifetime bounds how long a revoked key keeps working on a process that has
    seen it (docs/security.md); an expiry is checked on every request.
    """
    cached = ctx.key_cache.get(key)
    if cached and cached[0] > time.monotonic():
        principal = cached[1]
    else:
        # Requests arriving together when the entry expires share one read.
        pending = ctx.key_lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(_read_key(ctx, key))
            ctx.key_lookups[key] = pending
            pending.add_done_callback(lambda _: ctx.key_lookups.pop(key, None))
        principal = await asyncio.shield(pending)
    if (
        principal is not None
        and principal.expires_at is not None
        and (principal.expires_at <= utcnow())
    ):
        return None
    return principal


async def _read_key(ctx: AppContext, key: str) -> Principal | None:
    """Read a key's record and cache what it grants (None: unknown, revoked or expired)."""
    doc = await ctx.db.api_keys.find(key=key)
    principal = (
        Principal(
            tenant_id=doc["tenant_id"],
            scopes=frozenset(doc.get("scopes", [])),
            key_label=f"{doc.get('name', 'key')}:{doc['key_hash'][:12]}",
            environment=str(doc.get("environment") or "development"),
            key_id=str(doc.get("key_id") or f"key_{doc['key_hash'][:16]}"),
            rate_limit=doc.get("rate_limit"),
            expires_at=doc.get("expires_at"),
        )
        if doc
        else None
    )
    if len(ctx.key_cache) > 10_000:
        ctx.key_cache.clear()
    ctx.key_cache[key] = (time.monotonic() + ctx.settings.api_key_cache_s, principal)
    return principal


def _gateway_scopes(ctx: AppContext, request: HTTPConnection) -> frozenset[str]:
    """Roles the gateway asserted (gateway mode trusts them as it trusts X-User-ID)."""
    raw = request.headers.get(ctx.settings.gateway_roles_header, "")
    roles = {r.strip().lower() for r in raw.split(",") if r.strip()}
    return frozenset({"admin"}) if ctx.settings.gateway_admin_role.lower() in roles else frozenset()


async def resolve_principal(ctx: AppContext, request: HTTPConnection) -> Principal:
    """The caller of `request` (once per request: `api/access.py` resolves it first).

    `Authorization: ApiKey|Bearer <key>` names a key; with `X-User-ID` the key acts for that
    user. In gateway mode a request without a key is trusted as the gateway says: X-User-ID
    and X-Tenant-ID name the caller, and the roles header (`X-User-Roles: admin` by default)
    grants the admin scope.
    """
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    headers = request.headers
    x_user_id = headers.get("x-user-id")
    x_tenant_id = headers.get("x-tenant-id")
    key = _presented_key(headers.get("authorization"))
    if key is None:
        if ctx.settings.gateway_mode and x_user_id and x_tenant_id:
            principal = Principal(
                tenant_id=x_tenant_id,
                scopes=_gateway_scopes(ctx, request),
                user_id=x_user_id,
                via_gateway=True,
                key_label=f"gateway:{x_user_id}",
            )
            request.state.principal = principal
            return principal
        raise Unauthorized(_INVALID_TOKEN)
    found = await _principal_for_key(ctx, key)
    if found is None:
        raise Unauthorized(_INVALID_TOKEN)
    if x_tenant_id is not None and x_tenant_id != found.tenant_id:
        raise Forbidden("X-Tenant-ID does not match the API key's tenant")
    principal = replace(found, user_id=x_user_id, via_gateway=True) if x_user_id else found
    request.state.principal = principal
    return principal


async def authenticate(
    ctx: CtxDep,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller; the header parameters document what `resolve_principal` reads."""
    return await resolve_principal(ctx, request)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """The caller of a /manage/ RPC: `api/access.py` has checked its scope for this route
    (admin, or send / read where the access table allows them)."""
    return principal


async def require_user(principal: PrincipalDep) -> Principal:
    """A user named by X-User-ID, for the user-facing RPCs."""
    if not principal.user_id:
        raise ValidationFailed(["X-User-ID header is required for this operation"])
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
ManageDep = AdminDep  # the same: whichever scope the access table asks of the route
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
