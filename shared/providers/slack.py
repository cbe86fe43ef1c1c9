"""Slack adapter: an incoming-webhook URL, or `chat.postMessage` to a channel id with a bot token.

Both are one JSON POST, so the adapter makes it over the worker's shared `httpx.AsyncClient`
(slack_sdk's async client would bring aiohttp and its own retry handlers). Webhooks answer with
a status and a plain-text reason; the Web API answers HTTP 200 even for errors (`ok: false`).
"""

from __future__ import annotations

from functools import partial

import httpx
from pydantic import Field

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.providers.http import classify_transport_error, parse_retry_after, read_json
from shared.providers.spec import CredentialModel, ProviderSpec, http_adapter
from shared.providers.webhooks import chat_text, is_webhook, webhook_url

DEFAULT_API_URL = "https://slack.com"
POST_MESSAGE_PATH = "/api/chat.postMessage"
MAX_TEXT = 4000  # Slack truncates past 40k; a notification has no business being that long

# Webhook statuses that say this webhook is gone for good: the address is removed.
DEAD_WEBHOOK_STATUSES = frozenset({403, 404, 410})
# Web API errors about the channel itself.
DEAD_CHANNEL_ERRORS = frozenset({"channel_not_found", "is_archived", "channel_is_archived"})
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
    }
)
RETRY_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackCredentials(CredentialModel):
    """`{botToken?}`: needed only for channel ids; webhooks carry their own secret."""

    bot_token: str | None = Field(default=None, alias="botToken", repr=False)


class SlackProvider:
    """Delivers chat messages to Slack."""

    name = "SLACK"

    def __init__(
        self,
        *,
        credentials: SlackCredentials,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self._token = credentials.bot_token
        self._endpoint = endpoint
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        self._post_message_url = (endpoint or DEFAULT_API_URL).rstrip("/") + POST_MESSAGE_PATH

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Post to the webhook or channel the address names; never raises for provider failures."""
        text = chat_text(message, bold="*", limit=MAX_TEXT)
        if is_webhook(message.to):
            url = webhook_url(message.to, endpoint=self._endpoint)
            try:
                response = await self._http.post(url, json={"text": text}, timeout=self._timeout)
            except httpx.HTTPError as exc:
                return classify_transport_error(exc)
            return classify_webhook_response(response)
        if not self._token:
            return DeliveryResult(
                outcome=Outcome.PERMANENT,
                reason="no_bot_token",
                detail="a channel id needs the SLACK provider configured with a botToken",
            )
        try:
            response = await self._http.post(
                self._post_message_url,
                json={"channel": message.to, "text": text},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        return classify_api_response(response)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the worker."""


def classify_webhook_response(response: httpx.Response) -> DeliveryResult:
    """Classify an incoming-webhook answer: 200 `ok`, or a status with a plain-text reason."""
    status = response.status_code
    if status == 200:
        return DeliveryResult(outcome=Outcome.DELIVERED, status_code=status)
    reason = response.text.strip()[:100] or f"HTTP_{status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status in DEAD_WEBHOOK_STATUSES:
        outcome = Outcome.INVALID_RECIPIENT  # invalid_token, no_service, channel_is_archived
    elif status == 429:
        outcome = Outcome.RATE_LIMITED
    elif status >= 500:
        outcome = Outcome.RETRY
    else:
        outcome = Outcome.PERMANENT  # 400 invalid_payload, no_text, …
    return DeliveryResult(
        outcome=outcome,
        reason=reason,
        detail=f"webhook answered HTTP {status}: {reason}",
        retry_after_s=retry_after if outcome in (Outcome.RATE_LIMITED, Outcome.RETRY) else None,
        status_code=status,
    )


def classify_api_response(response: httpx.Response) -> DeliveryResult:
    """Classify a `chat.postMessage` answer (errors arrive as HTTP 200 with `ok: false`)."""
    status = response.status_code
    payload = read_json(response)
    body = payload if isinstance(payload, dict) else {}
    if status == 200 and body.get("ok") is True:
        channel, ts = body.get("channel"), body.get("ts")
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=f"{channel}:{ts}" if ts else None,
            status_code=status,
        )
    error = str(body.get("error") or f"HTTP_{status}")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    result = partial(
        DeliveryResult, reason=error, detail=f"chat.postMessage: {error}", status_code=status
    )

    if status == 429 or error == "ratelimited":
        return result(Outcome.RATE_LIMITED, retry_after_s=retry_after)
    if error in AUTH_ERRORS or status in (401, 403):
        return result(Outcome.PROVIDER_AUTH)
    if error in DEAD_CHANNEL_ERRORS:
        return result(Outcome.INVALID_RECIPIENT)
    if status >= 500 or error in RETRY_ERRORS:
        return result(Outcome.RETRY, retry_after_s=retry_after)
    # not_in_channel (invite the bot), msg_too_long, no_text, invalid_arguments, …
    return result(Outcome.PERMANENT)


SPEC = ProviderSpec(
    provider_type=ProviderType.SLACK,
    channels=frozenset({Channel.CHAT}),
    credentials_model=SlackCredentials,
    secret_fields=frozenset({"botToken"}),
    factory=http_adapter(SlackProvider),
)
