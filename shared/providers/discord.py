"""Discord adapter: `POST <webhook URL>?wait=true`, which answers the created message (its id).

A webhook URL carries its own token, so the provider has no credentials (`{}`); without
`?wait=true` Discord answers 204 and no id. Mentions are switched off: a notification's text
must not ping `@everyone`.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit, urlunsplit

import httpx

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.http import classify_transport_error, parse_retry_after, read_json
from shared.providers.spec import AdapterResources, CredentialModel, ProviderSpec
from shared.providers.webhooks import chat_text, webhook_url

MAX_CONTENT = 2000  # Discord refuses longer content (50035)
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027


class DiscordCredentials(CredentialModel):
    """`{}`: every Discord webhook URL carries its own token."""


def _with_wait(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("wait="))
    query = f"{query}&wait=true" if query else "wait=true"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class DiscordProvider:
    """Delivers chat messages through Discord webhooks."""

    name = "DISCORD"

    def __init__(self, *, endpoint: str | None, http: httpx.AsyncClient, timeout_s: float) -> None:
        self._endpoint = endpoint
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Execute the webhook; never raises for provider failures."""
        url = _with_wait(webhook_url(message.to, endpoint=self._endpoint))
        body = {
            "content": chat_text(message, bold="**", limit=MAX_CONTENT),
            "allowed_mentions": {"parse": []},
        }
        try:
            response = await self._http.post(url, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        return classify_response(response)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the worker."""


def classify_response(response: httpx.Response) -> DeliveryResult:
    """Classify an Execute Webhook answer: `{message, code}` errors, 429 with `retry_after`."""
    status = response.status_code
    payload = read_json(response)
    body = payload if isinstance(payload, dict) else {}
    if 200 <= status < 300:
        message_id = body.get("id")
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=message_id if isinstance(message_id, str) else None,
            status_code=status,
        )
    code = body.get("code")
    text = str(body.get("message") or f"HTTP {status}")
    reason = str(code) if isinstance(code, int) and code else f"HTTP_{status}"
    detail = f"{code}: {text}" if isinstance(code, int) and code else text

    result = partial(DeliveryResult, reason=reason, detail=detail, status_code=status)

    if status == 429:
        # The body's `retry_after` (float seconds) is finer than the header's whole seconds.
        retry_after = body.get("retry_after")
        delay = (
            float(retry_after)
            if isinstance(retry_after, int | float) and retry_after >= 0
            else parse_retry_after(response.headers.get("Retry-After"))
        )
        return result(Outcome.RATE_LIMITED, retry_after_s=delay)
    if code in (UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN) or status in (401, 404):
        return result(Outcome.INVALID_RECIPIENT)  # the webhook was deleted or its token reset
    if status >= 500:
        return result(
            Outcome.RETRY, retry_after_s=parse_retry_after(response.headers.get("Retry-After"))
        )
    # 400 50006 empty message, 50035 invalid form body; 403 missing permissions.
    return result(Outcome.PERMANENT)


def _build(
    *, config: ProviderConfig, credentials: DiscordCredentials, resources: AdapterResources
) -> DiscordProvider:
    return DiscordProvider(
        endpoint=config.endpoint, http=resources.http, timeout_s=resources.timeout_s
    )


SPEC = ProviderSpec(
    provider_type=ProviderType.DISCORD,
    channels=frozenset({Channel.CHAT}),
    credentials_model=DiscordCredentials,
    secret_fields=frozenset(),
    factory=_build,
)
