"""SendGrid email adapter: a direct async POST to the v3 Mail Send API.

The official SDK is synchronous, opens a connection per send and has no timeout (DESIGN.md §8),
so the adapter speaks the wire format itself over the worker's shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, field_validator

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.http import (
    classify_transport_error,
    parse_rate_limit_reset,
    parse_retry_after,
    read_json,
)
from shared.providers.spec import AdapterResources, CredentialModel, ProviderSpec, RequiredText

DEFAULT_BASE_URL = "https://api.sendgrid.com"
MAIL_SEND_PATH = "/v3/mail/send"

# Reasons for the statuses SendGrid documents for Mail Send; anything else reads "http_<code>".
_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    413: "payload_too_large",
    429: "rate_limited",
}


class SendGridCredentials(CredentialModel):
    """`{apiKey, fromEmail, fromName?}`: the API key and the verified sender it sends as."""

    api_key: RequiredText = Field(alias="apiKey", repr=False)
    from_email: RequiredText = Field(alias="fromEmail")
    from_name: str | None = Field(default=None, alias="fromName")
    # The Event Webhook's verification key (base64 DER, as the console shows it): receipts
    # posted to /webhooks/sendgrid are checked against it (docs/webhooks.md).
    webhook_public_key: str | None = Field(default=None, alias="webhookPublicKey")

    @field_validator("webhook_public_key")
    @classmethod
    def _a_p256_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            event_webhook_key(value)
        except ValueError:
            raise ValueError("must be the Event Webhook's public key (base64 DER)") from None
        return value.strip()

    @field_validator("from_email")
    @classmethod
    def _looks_like_an_address(cls, value: str) -> str:
        # Only the shape: SendGrid itself decides whether the sender is verified, and strict
        # address parsers refuse reserved domains (.test) that tests and staging use.
        if "@" not in value:
            raise ValueError("must be an e-mail address")
        return value


def event_webhook_key(text: str) -> ec.EllipticCurvePublicKey:
    """The Event Webhook key: base64 DER (or a PEM block); ValueError unless a P-256 key."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(stripped, validate=True))
    except (binascii.Error, TypeError, ValueError, UnsupportedAlgorithm):
        raise ValueError("not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 key")
    return key


def _error_detail(response: httpx.Response) -> str:
    """SendGrid's `{"errors": [{"message", "field", "help"}]}` joined into one line."""
    payload = read_json(response)
    parts: list[str] = []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list):
        for error in errors:
            if not isinstance(error, dict):
                continue
            message = str(error.get("message") or "").strip()
            field = error.get("field")
            help_url = error.get("help")
            text = f"{field}: {message}" if field else message
            if help_url:
                text = f"{text} ({help_url})"
            if text:
                parts.append(text)
    if parts:
        return "; ".join(parts)
    # No SendGrid error body (a proxy, an outage page): the raw start is still worth logging.
    raw = response.text.strip()
    return f"HTTP {response.status_code}" + (f": {raw[:200]}" if raw else "")


def build_mail_body(
    message: OutboundMessage, *, from_email: str, from_name: str | None
) -> dict[str, Any]:
    """The v3 Mail Send JSON body for one message."""
    sender: dict[str, str] = {"email": from_email}
    if from_name:
        sender["name"] = from_name
    # SendGrid requires text/plain first, then text/html.
    content = [{"type": "text/plain", "value": message.body}]
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": sender,
        "content": content,
        # Event webhooks echo custom_args back, which is how an event finds its notification.
        "custom_args": {
            "notification_id": message.notification_id,
            "tenant_id": message.tenant_id,
        },
    }
    subject = message.subject or message.title
    if subject is not None:
        body["subject"] = subject
    return body


class SendGridProvider:
    """Delivers email through SendGrid's v3 Mail Send API."""

    name = "SENDGRID"

    def __init__(
        self,
        *,
        credentials: SendGridCredentials,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        self._url = (endpoint or DEFAULT_BASE_URL).rstrip("/") + MAIL_SEND_PATH

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST one mail to SendGrid and classify the answer; never raises for provider failures."""
        credentials = self._credentials
        body = build_mail_body(
            message, from_email=credentials.from_email, from_name=credentials.from_name
        )
        try:
            response = await self._http.post(
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {credentials.api_key}"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        return classify_response(response)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the worker."""


def classify_response(response: httpx.Response, *, now: float | None = None) -> DeliveryResult:
    """Classify a SendGrid Mail Send answer."""
    status = response.status_code
    if 200 <= status < 300:
        # 202 is the documented answer; 200 comes back in sandbox mode, also accepted.
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=response.headers.get("X-Message-Id"),
            status_code=status,
        )
    reason = _REASONS.get(status, "server_error" if status >= 500 else f"http_{status}")
    retry_after: float | None = None
    if status in (401, 403):
        outcome = Outcome.PROVIDER_AUTH
    elif status == 429:
        outcome = Outcome.RATE_LIMITED
        # SendGrid documents X-RateLimit-Reset (epoch seconds); Retry-After wins when present.
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        if retry_after is None:
            retry_after = parse_rate_limit_reset(response.headers.get("X-RateLimit-Reset"), now=now)
    elif status >= 500:
        outcome = Outcome.RETRY
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
    else:
        # 400 / 413 and every other refusal: sending the same body again cannot succeed.
        outcome = Outcome.PERMANENT
    return DeliveryResult(
        outcome=outcome,
        retry_after_s=retry_after,
        reason=reason,
        detail=_error_detail(response),
        status_code=status,
    )


def _build(
    *, config: ProviderConfig, credentials: SendGridCredentials, resources: AdapterResources
) -> SendGridProvider:
    return SendGridProvider(
        credentials=credentials,
        endpoint=config.endpoint,
        http=resources.http,
        timeout_s=resources.timeout_s,
    )


SPEC = ProviderSpec(
    provider_type=ProviderType.SENDGRID,
    channels=frozenset({Channel.EMAIL}),
    credentials_model=SendGridCredentials,
    secret_fields=frozenset({"apiKey"}),
    factory=_build,
)
