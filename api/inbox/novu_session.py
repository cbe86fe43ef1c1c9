"""`get-inbox-session` for a tenant whose IN_APP route is Novu: Novu's own session.

Novu's inbox clients expect `POST /v1/widgets/session/initialize` with the application
identifier; the answer's token goes back as the seed's `sessionToken`, with Novu's API and
socket addresses as `apiUrl` / `wsUrl`.
"""

from __future__ import annotations

from typing import Any

from api.context import AppContext, Principal
from shared.domain import Channel
from shared.errors import Unavailable, ValidationFailed
from shared.providers import novu_api
from shared.providers.base import Outcome
from shared.providers.stored import configs_of_type


async def novu_session(*, ctx: AppContext, user: Principal) -> dict[str, Any] | None:
    """Novu's session for the user, or None when the tenant's IN_APP is not routed to Novu."""
    assert user.user_id is not None
    configs = await configs_of_type(
        providers=ctx.db.providers,
        cipher=ctx.cipher,
        tenant_id=user.tenant_id,
        provider_type="NOVU",
    )
    route = next((c for c in configs if Channel.IN_APP.value in c.channels), None)
    if route is None:
        return None
    app_id = route.credentials.get("applicationIdentifier")
    if not app_id:
        raise ValidationFailed(
            [
                f"credentials.applicationIdentifier is required of the NOVU config "
                f"{route.provider_id} for inbox sessions"
            ]
        )
    subscriber = await ctx.db.subscribers.get(tenant_id=user.tenant_id, subscriber_id=user.user_id)
    assert ctx.http is not None
    token, result = await novu_api.initialize_session(
        ctx.http,
        endpoint=route.endpoint,
        api_key=str(route.credentials["apiKey"]),
        application_identifier=str(app_id),
        subscriber=subscriber or {},
        subscriber_id=user.user_id,
        timeout_s=ctx.settings.provider_timeout_s,
    )
    if token is None or result.outcome is not Outcome.DELIVERED:
        raise Unavailable(f"Novu did not open a session: {result.reason}: {result.detail}")
    return {
        "sessionToken": token,
        "apiUrl": novu_api.base_url(route.endpoint),
        "wsUrl": novu_api.socket_url(route.endpoint, route.credentials.get("wsUrl")),
    }
