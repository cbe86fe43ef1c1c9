"""FCM's side of Google auth: the credential model tenants configure, and the OAuth2 token cache.

The service account is validated once, when it is configured (and again when a worker builds the
adapter from the stored document); the adapter then only asks `AccessTokens` for a bearer token.
google-auth's transport is blocking, so the refresh runs in a thread, one at a time per account.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from shared.providers.base import DeliveryResult, Outcome
from shared.providers.spec import CredentialModel, RequiredText

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

# Google's tokens live an hour; refreshing this long before expiry keeps a send from racing it.
TOKEN_REFRESH_MARGIN_S = 300.0
# Used only when the token endpoint leaves out `expires_in`.
_DEFAULT_TOKEN_LIFETIME_S = 300.0
_RETRYABLE_TOKEN_STATUSES = frozenset(google.auth.transport.DEFAULT_RETRYABLE_STATUS_CODES)


def google_credentials(info: dict[str, Any]) -> service_account.Credentials:
    """google-auth's service-account credentials; ValueError when the account is unusable."""
    try:
        # google-auth ships py.typed but leaves these functions unannotated.
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[FCM_SCOPE]
            )
        )
    except (ValueError, TypeError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        # The exception names what is wrong (a missing field, an unreadable key), never a value.
        raise ValueError(f"is not a usable service account: {exc}") from None
    return credentials


class ServiceAccount(CredentialModel):
    """A service-account key file; the fields not checked here are kept for google-auth."""

    model_config = ConfigDict(extra="allow")

    type: Literal["service_account"] = "service_account"
    project_id: RequiredText
    client_email: RequiredText
    private_key: RequiredText = Field(repr=False)

    @model_validator(mode="after")
    def _usable(self) -> Self:
        # Parsing the key here means an account the API accepts is one the worker can sign with.
        google_credentials(self.info())
        return self

    def info(self) -> dict[str, Any]:
        """The document as google-auth reads it."""
        return self.model_dump()


def _json_document(value: object) -> object:
    # Clients send the downloaded key file as a string (seed 000); an object is accepted too.
    if isinstance(value, str):
        if not value.strip():
            # Reported like a missing field: "credentials.serviceAccountJson is required for FCM".
            raise PydanticCustomError("missing", "is required")
        try:
            value = json.loads(value)
        except ValueError:
            # Not the decoder's text: it can quote part of the (secret) document.
            raise ValueError("must be a service-account JSON document") from None
    if not isinstance(value, dict):
        raise ValueError("must be a service-account JSON document")
    return value


class FcmCredentials(CredentialModel):
    """`{serviceAccountJson}`: the service account whose project the messages are sent from."""

    service_account: Annotated[ServiceAccount, BeforeValidator(_json_document)] = Field(
        alias="serviceAccountJson", repr=False
    )


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


class TokenFailure(Exception):
    """Carries the classified result of a failed token fetch out of the refresh path."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.detail)
        self.result = result


class AccessTokens:
    """One service account's OAuth2 access token, fetched on demand and shared by every send."""

    def __init__(self, credentials: FcmCredentials, *, timeout_s: float) -> None:
        # Cannot fail: the same document passed the same call when the credentials validated.
        self._credentials = google_credentials(credentials.service_account.info())
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._session: requests.Session | None = None

    async def get(self) -> str:
        """A fresh bearer token; `TokenFailure` carries the classified result otherwise."""
        if self._is_fresh() and self._token is not None:
            return self._token
        async with self._lock:
            # Another send may have refreshed while this one waited for the lock.
            if self._is_fresh() and self._token is not None:
                return self._token
            # google-auth's transport is blocking; the loop keeps serving other sends meanwhile.
            token, expires_at = await asyncio.to_thread(self._refresh_blocking)
            self._token, self._expires_at = token, expires_at
            return token

    def drop(self, token: str) -> None:
        """Forget a token FCM refused, unless another send already replaced it."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    def close(self) -> None:
        """Close the token fetcher's connection pool."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _is_fresh(self) -> bool:
        return self._token is not None and time.time() < (self._expires_at - TOKEN_REFRESH_MARGIN_S)

    def _refresh_blocking(self) -> tuple[str, float]:
        credentials = self._credentials
        if self._session is None:
            self._session = requests.Session()
        request = _TokenRequest(self._session, timeout_s=self._timeout_s)
        try:
            credentials.refresh(request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            raise TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY if retryable else Outcome.PROVIDER_AUTH,
                    reason="token_unavailable" if retryable else "token_refused",
                    detail=_refresh_error_text(exc),
                )
            ) from None
        except google.auth.exceptions.TransportError as exc:
            busy = isinstance(exc, _TokenEndpointBusy)
            raise TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY,
                    reason="token_endpoint_unavailable" if busy else "token_endpoint_unreachable",
                    detail=str(exc),
                )
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise TokenFailure(
                DeliveryResult(
                    outcome=Outcome.PROVIDER_AUTH, reason="token_refused", detail=str(exc)
                )
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            # A token endpoint answering 200 with a body google-auth cannot read.
            raise TokenFailure(
                DeliveryResult(
                    outcome=Outcome.RETRY, reason="token_response_invalid", detail=repr(exc)
                )
            ) from None
        token = credentials.token
        if not isinstance(token, str) or not token:
            raise TokenFailure(
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
