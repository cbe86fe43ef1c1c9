"""Who may call what: one table of rules by route path, applied to every route by one
app-level dependency (`enforce_access`), so a new route is covered without an edit.

| route (path template)                         | needs                                      |
|-----------------------------------------------|--------------------------------------------|
| `/api/v1/notifications/manage/<rpc>`          | see `manage_access`: send RPCs `send`;      |
|                                               | status `send` or `read`; get/list/check    |
|                                               | `read`; the rest (and `ADMIN_ONLY`) `admin` |
| `POST /api/v1/notifications` (seed 003)       | `send`                                     |
| `GET /api/v1/notifications/{notification_id}` | `send` or `read` (it is a status)          |
| `/api/v1/notifications/<rpc>` (user RPCs)     | a user (X-User-ID, the gateway, a session) |
| `/health/…`, `/metrics`, `/dashboard`, `/inbox/` pages | nothing (public)                  |
| `/webhooks/…` (provider receipts)             | the provider's signature (checked there)   |
| anything else (e.g. `/dev/…`)                 | `admin`                                    |

`admin` grants everything. Each call with a key also spends one request of the key's rate
limit (`api/ratelimit.py`), refused ones included, before its scope is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from api.context import AppContext, Principal
from api.deps import resolve_principal
from shared.errors import Forbidden, Unauthorized, ValidationFailed

API = "/api/v1/notifications"
MANAGE = f"{API}/manage/"
SCOPES = ("admin", "send", "read")

# Pages and scripts that hold no data (the dashboard and the inbox demo ask for credentials
# in the browser; the inbox WebSocket checks its session token itself), and the providers'
# receipt endpoints, which are authenticated by the provider's signature, not an API key.
PUBLIC_PREFIXES = (
    "/health/",
    "/metrics",
    "/dashboard",
    "/inbox/",
    "/webhooks/",
    "/docs",
    "/redoc",
    "/openapi.json",
)
# Reads that stay with admins: key metadata, provider configuration and webhook endpoints.
ADMIN_ONLY = frozenset(
    {"list-api-keys", "get-providers", "list-webhooks", "list-webhook-deliveries"}
)
# RPCs that report on sends: a key that may send may follow its sends.
STATUS_RPCS = frozenset(
    {"get-delivery-status", "get-notification-activity", "list-transaction-recipients"}
)
SEND_PREFIXES = ("send", "trigger", "cancel")
READ_PREFIXES = ("get-", "list-", "check-")


@dataclass(frozen=True, slots=True)
class Access:
    """What a route asks of its caller: nothing, any of `scopes`, or a user."""

    public: bool = False
    scopes: frozenset[str] = frozenset()
    user: bool = False

    def describe(self) -> str:
        """`send` or `read`, for the 403 message."""
        return " or ".join(s for s in SCOPES if s in self.scopes)


PUBLIC = Access(public=True)
ADMIN = Access(scopes=frozenset({"admin"}))
USER = Access(user=True)


def _any_of(*scopes: str) -> Access:
    return Access(scopes=frozenset({"admin", *scopes}))


def manage_access(rpc: str) -> Access:
    """The scope an RPC under `/manage/` needs."""
    if rpc in ADMIN_ONLY:
        return ADMIN
    if rpc in STATUS_RPCS:
        return _any_of("send", "read")
    if rpc.startswith(SEND_PREFIXES):
        return _any_of("send")
    if rpc.startswith(READ_PREFIXES):
        return _any_of("read")
    return ADMIN


def access_for(*, method: str, path: str) -> Access:
    """The rule for a route, by its path template (e.g. `/api/v1/notifications/{id}`)."""
    if path.startswith(MANAGE):
        return manage_access(path.removeprefix(MANAGE))
    if path == API:
        return _any_of("send")
    if path.startswith(f"{API}/"):
        rest = path.removeprefix(f"{API}/")
        if rest.startswith("{") and method == "GET":
            return _any_of("send", "read")
        return USER
    if path.startswith(PUBLIC_PREFIXES):
        return PUBLIC
    return ADMIN


def check(access: Access, principal: Principal) -> None:
    """Raise unless `principal` may call a route with this rule."""
    if access.user:
        if not principal.user_id:
            raise ValidationFailed(["X-User-ID header is required for this operation"])
        return
    if not access.scopes & principal.scopes:
        raise Forbidden(f"this operation needs an API key with the {access.describe()} scope")


async def enforce_access(connection: HTTPConnection) -> None:
    """The app-level dependency: authenticate, spend one request of the key's rate limit,
    check the route's rule. The principal is kept for the route's own dependencies.

    WebSocket routes authenticate their handshake themselves. On a user RPC, credentials
    that are not an API key (e.g. a subscriber's session token) are left to the route's own
    dependency, which accepts or refuses them.
    """
    if connection.scope["type"] != "http":
        return
    route = connection.scope.get("route")
    path = str(getattr(route, "path", connection.url.path))
    access = access_for(method=connection.scope["method"], path=path)
    if access.public:
        return
    ctx: AppContext = connection.app.state.ctx
    try:
        principal = await resolve_principal(ctx, connection)
    except Unauthorized:
        if access.user:
            return
        raise
    if principal.key_id is not None:
        limiter = ctx.rate_limiter
        decision = await limiter.take(key_id=principal.key_id, limit=principal.rate_limit)
        connection.state.rate_limit = decision
        if not decision.allowed:
            raise limiter.refusal(decision)
    check(access, principal)
