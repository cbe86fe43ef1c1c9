"""Firebase Cloud Messaging adapter: the FCM HTTP v1 API called directly with an async client.

firebase-admin's async client is bound to its first event loop and retries 500/503 on its own
(DESIGN.md §8), so the adapter only borrows google-auth for the OAuth2 service-account grant
(`shared.providers.fcm_auth`) and speaks FCM v1 itself over the worker's shared
`httpx.AsyncClient`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.fcm_auth import AccessTokens, FcmCredentials, TokenFailure
from shared.providers.http import classify_transport_error, parse_retry_after, read_json
from shared.providers.spec import AdapterResources, ProviderSpec

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True, slots=True)
class FcmError:
    """The parts of FCM v1's `{"error": {...}}` body the classification needs."""

    status: str | None = None  # google.rpc status, e.g. "INVALID_ARGUMENT"
    message: str | None = None
    error_code: str | None = None  # FcmError.errorCode, e.g. "UNREGISTERED"
    violated_fields: tuple[str, ...] = field(default_factory=tuple)
    violation_descriptions: tuple[str, ...] = field(default_factory=tuple)

    def concerns_token(self) -> bool:
        """True when the complaint is about the registration token, not the payload."""
        if any(name == "message.token" for name in self.violated_fields):
            return True
        texts = (self.message or "", *self.violation_descriptions)
        return any("registration token" in t.lower() or "message.token" in t for t in texts)

    def describe(self, status_code: int) -> str:
        """One line for operators."""
        label = self.error_code or self.status or f"HTTP {status_code}"
        return f"{label}: {self.message}" if self.message else label


def parse_fcm_error(response: httpx.Response) -> FcmError:
    """Read FCM v1's error body; tolerate anything else (proxy pages, empty bodies)."""
    payload = read_json(response)
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        raw = response.text.strip()[:200]
        return FcmError(message=raw or None)
    error_code: str | None = None
    fields: list[str] = []
    descriptions: list[str] = []
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        if kind == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            error_code = detail["errorCode"]
        elif kind == BAD_REQUEST_TYPE and isinstance(detail.get("fieldViolations"), list):
            for violation in detail["fieldViolations"]:
                if isinstance(violation, dict):
                    fields.append(str(violation.get("field") or ""))
                    descriptions.append(str(violation.get("description") or ""))
    status = error.get("status")
    message = error.get("message")
    return FcmError(
        status=status if isinstance(status, str) else None,
        message=message if isinstance(message, str) else None,
        error_code=error_code,
        violated_fields=tuple(fields),
        violation_descriptions=tuple(descriptions),
    )


def build_fcm_body(message: OutboundMessage) -> dict[str, Any]:
    """The FCM HTTP v1 `messages:send` body for one device token."""
    notification: dict[str, str] = {"body": message.body}
    title = message.title or message.subject
    if title is not None:
        notification["title"] = title
    if message.image_url:
        notification["image"] = message.image_url
    # FCM data is a map<string, string>; anything else is rejected with INVALID_ARGUMENT.
    data = {str(key): str(value) for key, value in message.data.items()}
    if message.deep_link:
        data["deepLink"] = message.deep_link
    high = message.priority >= 4
    return {
        "message": {
            "token": message.to,
            "notification": notification,
            "data": data,
            "android": {"priority": "HIGH" if high else "NORMAL"},
            "apns": {"headers": {"apns-priority": "10" if high else "5"}},
        }
    }


class FcmProvider:
    """Delivers push notifications through the FCM HTTP v1 API."""

    name = "FCM"

    def __init__(
        self,
        *,
        credentials: FcmCredentials,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        self._base_url = (endpoint or DEFAULT_BASE_URL).rstrip("/")
        self._project_id = credentials.service_account.project_id
        self._tokens = AccessTokens(credentials, timeout_s=timeout_s)

    @property
    def send_url(self) -> str:
        """The `messages:send` URL of the service account's project."""
        return f"{self._base_url}/v1/projects/{self._project_id}/messages:send"

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST one message to FCM and classify the answer; never raises for provider failures."""
        try:
            token = await self._tokens.get()
        except TokenFailure as failure:
            return failure.result
        try:
            response = await self._http.post(
                self.send_url,
                json=build_fcm_body(message),
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        result = classify_response(response)
        if response.status_code == 401 and result.reason == "UNAUTHENTICATED":
            # Our token was refused (revoked, or expired early): the next send must fetch anew.
            self._tokens.drop(token)
        return result

    async def aclose(self) -> None:
        """Close the token fetcher's connection pool (the shared HTTP client is not ours)."""
        self._tokens.close()


def classify_response(response: httpx.Response) -> DeliveryResult:
    """Classify an FCM v1 `messages:send` answer."""
    status = response.status_code
    if 200 <= status < 300:
        payload = read_json(response)
        name = payload.get("name") if isinstance(payload, dict) else None
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=name if isinstance(name, str) else None,
            status_code=status,
        )
    error = parse_fcm_error(response)
    code = error.error_code
    detail = error.describe(status)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    def result(
        outcome: Outcome, reason: str, *, retry_after_s: float | None = None
    ) -> DeliveryResult:
        return DeliveryResult(
            outcome=outcome,
            reason=reason,
            detail=detail,
            retry_after_s=retry_after_s,
            status_code=status,
        )

    # FCM's own errorCode is the most specific signal, so it is read before the HTTP status.
    if code in ("UNREGISTERED", "SENDER_ID_MISMATCH"):
        return result(Outcome.INVALID_RECIPIENT, code)
    if code == "INVALID_ARGUMENT" or (code is None and error.status == "INVALID_ARGUMENT"):
        if error.concerns_token():
            return result(Outcome.INVALID_RECIPIENT, "INVALID_ARGUMENT")
        return result(Outcome.PERMANENT, "INVALID_ARGUMENT")
    if code == "QUOTA_EXCEEDED" or status == 429:
        return result(
            Outcome.RATE_LIMITED,
            code or error.status or "RESOURCE_EXHAUSTED",
            retry_after_s=retry_after,
        )
    if code == "THIRD_PARTY_AUTH_ERROR":
        return result(Outcome.PROVIDER_AUTH, code)
    if status == 401:
        return result(Outcome.PROVIDER_AUTH, "UNAUTHENTICATED")
    if status == 403:
        return result(Outcome.PROVIDER_AUTH, code or error.status or "PERMISSION_DENIED")
    if code in ("UNAVAILABLE", "INTERNAL") or status >= 500:
        return result(
            Outcome.RETRY, code or error.status or f"HTTP_{status}", retry_after_s=retry_after
        )
    return result(Outcome.PERMANENT, code or error.status or f"HTTP_{status}")


def _build(
    *, config: ProviderConfig, credentials: FcmCredentials, resources: AdapterResources
) -> FcmProvider:
    return FcmProvider(
        credentials=credentials,
        endpoint=config.endpoint,
        http=resources.http,
        timeout_s=resources.timeout_s,
    )


SPEC = ProviderSpec(
    provider_type=ProviderType.FCM,
    channels=frozenset({Channel.PUSH}),
    credentials_model=FcmCredentials,
    secret_fields=frozenset({"serviceAccountJson"}),
    factory=_build,
)
