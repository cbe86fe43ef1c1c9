"""Apple Push Notification service adapter: HTTP/2 `POST /3/device/<token>` with a provider JWT.

There is no official Python SDK and aioapns has no host option (DESIGN.md §8), so the adapter
speaks APNs' HTTP/2 API over an `httpx.AsyncClient(http2=True)` of its own (one connection,
many streams, as Apple asks). An `endpoint` with `http://` is spoken as h2c with prior knowledge,
which is how the local fake runs without TLS.
"""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import httpx

from shared.domain import Channel, ProviderType
from shared.providers.apns_auth import ApnsCredentials, ProviderTokens
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.http import classify_transport_error, parse_retry_after, read_json
from shared.providers.spec import AdapterResources, ProviderSpec

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# How long APNs keeps trying a device that is offline (`apns-expiration`).
EXPIRATION_S = 24 * 3600
# Apple asks for a handful of connections at most; streams multiplex on each.
_MAX_CONNECTIONS = 4

# The token itself is dead: delete it from the subscriber (PROVIDERS.md §2.2).
DEAD_TOKEN_REASONS = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
# Our key, team or certificate was refused.
AUTH_REASONS = frozenset(
    {
        "InvalidProviderToken",
        "MissingProviderToken",
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
        "TooManyProviderTokenUpdates",
    }
)
_NAMESPACE = uuid.UUID("7c8d1f0e-2b1a-4f6e-9d3c-5a4b3c2d1e0f")


def build_payload(message: OutboundMessage) -> dict[str, Any]:
    """The APNs JSON payload: `aps.alert` plus the notification's data as custom keys."""
    alert: dict[str, str] = {"body": message.body}
    title = message.title or message.subject
    if title:
        alert["title"] = title
    aps: dict[str, Any] = {"alert": alert, "sound": "default"}
    if message.image_url:
        aps["mutable-content"] = 1  # lets a notification service extension fetch the image
    payload: dict[str, Any] = {
        key: value for key, value in message.data.items() if key != "aps"
    }  # "aps" is Apple's
    payload["aps"] = aps
    if message.deep_link:
        payload["deepLink"] = message.deep_link
    if message.image_url:
        payload["imageUrl"] = message.image_url
    return payload


def build_headers(message: OutboundMessage, *, topic: str, now: float) -> dict[str, str]:
    """The `apns-*` request headers (authorization added per send)."""
    high = message.priority >= 4
    return {
        "apns-topic": topic,
        "apns-push-type": "alert",
        "apns-priority": "10" if high else "5",
        "apns-expiration": str(int(now) + EXPIRATION_S),
        # Stable per notification: a redelivered send replaces, rather than adds to, the alert
        # a device already shows; and Apple's logs name the same id for both.
        "apns-collapse-id": message.notification_id[:64],
        "apns-id": str(uuid.uuid5(_NAMESPACE, message.notification_id)),
    }


class ApnsProvider:
    """Delivers push notifications to iOS devices through APNs."""

    name = "APNS"

    def __init__(
        self, *, credentials: ApnsCredentials, endpoint: str | None, timeout_s: float
    ) -> None:
        default = PRODUCTION_URL if credentials.production else SANDBOX_URL
        base_url = (endpoint or default).rstrip("/")
        self._topic = credentials.bundle_id
        self._tokens = ProviderTokens(credentials)
        self._timeout = httpx.Timeout(timeout_s)
        # http1=False: over http:// httpx then speaks h2c with prior knowledge (APNs is h2 only).
        self._http = httpx.AsyncClient(
            base_url=base_url,
            http1=False,
            http2=True,
            trust_env=False,
            limits=httpx.Limits(max_connections=_MAX_CONNECTIONS),
            timeout=self._timeout,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST one notification to a device token; never raises for provider failures."""
        result, token = await self._post(message)
        if result.reason == "ExpiredProviderToken":
            # Our token aged out (a clock jump, a long-idle adapter): sign anew and retry once.
            self._tokens.renew(token)
            result, _ = await self._post(message)
        return result

    async def _post(self, message: OutboundMessage) -> tuple[DeliveryResult, str]:
        token = self._tokens.get()
        headers = build_headers(message, topic=self._topic, now=time.time())
        headers["authorization"] = f"bearer {token}"
        try:
            response = await self._http.post(
                f"/3/device/{message.to}", json=build_payload(message), headers=headers
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc), token
        return classify_response(response), token

    async def aclose(self) -> None:
        """Close the adapter's own HTTP/2 connections."""
        await self._http.aclose()


def classify_response(response: httpx.Response) -> DeliveryResult:
    """Classify an APNs answer: status plus `{"reason"}` (and `timestamp` for 410)."""
    status = response.status_code
    if status == 200:
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=response.headers.get("apns-id"),
            status_code=status,
        )
    payload = read_json(response)
    reason = payload.get("reason") if isinstance(payload, dict) else None
    if not isinstance(reason, str) or not reason:
        reason = f"HTTP_{status}"
    detail = reason
    if status == 410 and isinstance(payload, dict) and payload.get("timestamp") is not None:
        detail = f"{reason} since {payload['timestamp']} (ms since epoch)"

    result = partial(DeliveryResult, reason=reason, detail=detail, status_code=status)

    if reason in DEAD_TOKEN_REASONS or status == 410:
        return result(Outcome.INVALID_RECIPIENT)
    if reason == "ExpiredProviderToken":
        return result(Outcome.PROVIDER_AUTH)  # `send` renews the token and tries once more
    if status == 403 or reason in AUTH_REASONS:
        return result(Outcome.PROVIDER_AUTH)
    if status == 429:
        # TooManyRequests: too many pushes to this one device. Apple sends no delay; the
        # channel's backoff applies unless a proxy in front said Retry-After.
        return result(
            Outcome.RATE_LIMITED,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        return result(
            Outcome.RETRY, retry_after_s=parse_retry_after(response.headers.get("Retry-After"))
        )
    # 400 BadTopic / PayloadEmpty / BadExpirationDate …, 404 BadPath, 405, 413 PayloadTooLarge.
    return result(Outcome.PERMANENT)


def _build(
    *, config: ProviderConfig, credentials: ApnsCredentials, resources: AdapterResources
) -> ApnsProvider:
    return ApnsProvider(
        credentials=credentials, endpoint=config.endpoint, timeout_s=resources.timeout_s
    )


SPEC = ProviderSpec(
    provider_type=ProviderType.APNS,
    channels=frozenset({Channel.PUSH}),
    credentials_model=ApnsCredentials,
    secret_fields=frozenset({"privateKey"}),
    factory=_build,
)
