"""Firebase Cloud Messaging adapter: the FCM HTTP v1 API called directly with an async client.

firebase-admin's async client is bound to its first event loop and retries 500/503 on its own
(DESIGN.md §8), so the adapter only borrows google-auth for the OAuth2 service-account grant and
speaks FCM v1 itself over the worker's shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import httpx
import requests
from google.oauth2 import service_account

from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.http import classify_transport_error, parse_retry_after, read_json

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# Google's tokens live an hour; refreshing this long before expiry keeps a send from racing it.
TOKEN_REFRESH_MARGIN_S = 300.0
# Used only when the token endpoint leaves out `expires_in`.
_DEFAULT_TOKEN_LIFETIME_S = 300.0
_RETRYABLE_TOKEN_STATUSES = frozenset(google.auth.transport.DEFAULT_RETRYABLE_STATUS_CODES)


class _TokenEndpointBusy(google.auth.exceptions.TransportError):
    """The token endpoint answered with a retryable status."""

    def __init__(self, status: int) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            f"token endpoint answered HTTP {status}", retryable=True
        )
        self.status = status


class _TokenRequest:
    """google-auth's requests transport with our timeout and without its in-thread back-off."""

    def __init__(self, session: requests.Session, *, timeout_s: float) -> None:
        self._inner = google.auth.transport.requests.Request(session=session)
        self._timeout_s = timeout_s

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        # google-auth's default is 120 s; a token fetch must not outlive the send it serves.
        response = self._inner(
            url, method=method, body=body, headers=headers, timeout=self._timeout_s, **kwargs
        )
        if response.status >= 500 or response.status in _RETRYABLE_TOKEN_STATUSES:
            # google-auth would sleep and retry 3 times in this thread while every send of the
            # tenant waits on the lock; raising ends that, and the worker's delay queues retry.
            raise _TokenEndpointBusy(response.status)
        return response


class _TokenFailure(Exception):
    """Carries the classified result of a failed token fetch out of the refresh path."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.detail)
        self.result = result


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


def _load_service_account(raw: object) -> tuple[service_account.Credentials, str]:
    """Credentials and project id from `serviceAccountJson`; ValueError with a clear reason."""
    if raw is None:
        raise ValueError("credentials.serviceAccountJson is missing")
    if isinstance(raw, str):
        try:
            info = json.loads(raw)
        except ValueError as exc:
            # The exception text names a position only, never the (secret) content.
            raise ValueError(f"serviceAccountJson is not valid JSON: {exc}") from None
    else:
        info = raw
    if not isinstance(info, dict):
        raise ValueError("serviceAccountJson must be a JSON object")
    kind = info.get("type")
    if kind is not None and kind != "service_account":
        raise ValueError(f"serviceAccountJson has type {kind!r}, expected 'service_account'")
    project_id = info.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        raise ValueError("serviceAccountJson has no project_id")
    try:
        # google-auth ships py.typed but leaves these functions unannotated.
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[FCM_SCOPE]
        )
    except (ValueError, TypeError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        raise ValueError(f"serviceAccountJson is not a usable service account: {exc}") from None
    return credentials, project_id


class FcmProvider:
    """Delivers push notifications through the FCM HTTP v1 API."""

    name = "FCM"

    def __init__(
        self, config: ProviderConfig, *, http: httpx.AsyncClient, timeout_s: float
    ) -> None:
        self._http = http
        self._timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)
        self._base_url = (config.endpoint or DEFAULT_BASE_URL).rstrip("/")
        self._credentials: service_account.Credentials | None = None
        self._project_id = ""
        self._setup_error: str | None = None
        # A broken service account is reported per send, not raised here, so one tenant's bad
        # config becomes a recorded outcome instead of a crash while building adapters.
        try:
            self._credentials, self._project_id = _load_service_account(
                config.credentials.get("serviceAccountJson")
            )
        except ValueError as exc:
            self._setup_error = str(exc)
        self._lock = asyncio.Lock()
        self._access_token: str | None = None
        self._token_expires_at = 0.0
        self._session: requests.Session | None = None

    @property
    def send_url(self) -> str:
        """The `messages:send` URL of the service account's project."""
        return f"{self._base_url}/v1/projects/{self._project_id}/messages:send"

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST one message to FCM and classify the answer; never raises for provider failures."""
        if self._setup_error is not None:
            return DeliveryResult(
                outcome=Outcome.PROVIDER_AUTH,
                reason="invalid_service_account",
                detail=self._setup_error,
            )
        try:
            token = await self._get_access_token()
        except _TokenFailure as failure:
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
            self._drop_token(token)
        return result

    async def aclose(self) -> None:
        """Close the token fetcher's connection pool (the shared HTTP client is not ours)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _token_is_fresh(self) -> bool:
        return self._access_token is not None and time.time() < (
            self._token_expires_at - TOKEN_REFRESH_MARGIN_S
        )

    def _drop_token(self, token: str) -> None:
        # Only if no other send has already replaced it with a fresh one.
        if self._access_token == token:
            self._access_token = None
            self._token_expires_at = 0.0

    async def _get_access_token(self) -> str:
        if self._token_is_fresh() and self._access_token is not None:
            return self._access_token
        async with self._lock:
            # Another send may have refreshed while this one waited for the lock.
            if self._token_is_fresh() and self._access_token is not None:
                return self._access_token
            # google-auth's transport is blocking; the loop keeps serving other sends meanwhile.
            token, expires_at = await asyncio.to_thread(self._refresh_token_blocking)
            self._access_token, self._token_expires_at = token, expires_at
            return token

    def _refresh_token_blocking(self) -> tuple[str, float]:
        credentials = self._credentials
        if credentials is None:  # guarded by send(); kept for type narrowing
            raise _TokenFailure(
                DeliveryResult(outcome=Outcome.PROVIDER_AUTH, reason="invalid_service_account")
            )
        if self._session is None:
            self._session = requests.Session()
        request = _TokenRequest(self._session, timeout_s=self._timeout_s)
        try:
            credentials.refresh(request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            raise _TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY if retryable else Outcome.PROVIDER_AUTH,
                    reason="token_unavailable" if retryable else "token_refused",
                    detail=_refresh_error_text(exc),
                )
            ) from None
        except google.auth.exceptions.TransportError as exc:
            busy = isinstance(exc, _TokenEndpointBusy)
            raise _TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY,
                    reason="token_endpoint_unavailable" if busy else "token_endpoint_unreachable",
                    detail=str(exc),
                )
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise _TokenFailure(
                DeliveryResult(
                    outcome=Outcome.PROVIDER_AUTH, reason="token_refused", detail=str(exc)
                )
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            # A token endpoint answering 200 with a body google-auth cannot read.
            raise _TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY, reason="token_response_invalid", detail=repr(exc)
                )
            ) from None
        token = credentials.token
        if not isinstance(token, str) or not token:
            raise _TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY,
                    reason="token_response_invalid",
                    detail="token endpoint returned no access token",
                )
            )
        expiry = credentials.expiry
        if isinstance(expiry, datetime):
            # google-auth keeps expiry as a naive UTC datetime.
            expires_at = expiry.replace(tzinfo=UTC).timestamp()
        else:
            expires_at = time.time() + _DEFAULT_TOKEN_LIFETIME_S + TOKEN_REFRESH_MARGIN_S
        return token, expires_at


def _refresh_error_text(exc: google.auth.exceptions.RefreshError) -> str:
    # RefreshError's args are (text, response_data); the text alone reads well in a log.
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


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
