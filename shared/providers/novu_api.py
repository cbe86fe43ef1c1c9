"""Novu's v1 REST contract (seeds 001/002): paths, answers, and the calls besides a trigger.

The trigger adapter is `shared/providers/novu.py`; here is what it shares with the other calls
the service makes to a tenant's Novu: cancelling a transaction, mirroring a subscriber, and
opening an inbox session. Every call classifies Novu's answer into a `DeliveryResult`; none
raises for an answer or a transport failure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from shared.providers.base import DeliveryResult, Outcome
from shared.providers.http import (
    classify_transport_error,
    parse_retry_after,
    read_json,
)

DEFAULT_BASE_URL = "https://api.novu.co"
TRIGGER_PATH = "/v1/events/trigger"
BULK_PATH = "/v1/events/trigger/bulk"
SUBSCRIBERS_PATH = "/v1/subscribers"
SESSION_PATH = "/v1/widgets/session/initialize"
PROCESSED = "processed"
# Novu Cloud's socket servers, by API host; a self-hosted instance names its own (`wsUrl`).
CLOUD_SOCKETS = {"api.novu.co": "wss://ws.novu.co", "eu.api.novu.co": "wss://eu.ws.novu.co"}

_PERMANENT = frozenset({400, 404, 413, 422})
_RETRY = frozenset({408, 409})


def base_url(endpoint: str | None) -> str:
    """The API base: the config's endpoint (Novu Cloud US/EU, self-hosted), else Novu Cloud."""
    return (endpoint or DEFAULT_BASE_URL).rstrip("/")


def socket_url(endpoint: str | None, ws_url: str | None) -> str:
    """Where inbox clients open Novu's socket."""
    if ws_url:
        return ws_url
    api = base_url(endpoint)
    return CLOUD_SOCKETS.get(urlsplit(api).hostname or "", api)


def headers(api_key: str) -> dict[str, str]:
    """`Authorization: ApiKey …` as seed 002 says."""
    return {"Authorization": f"ApiKey {api_key}"}


def envelope(response: httpx.Response) -> Any:
    """The answer's `data` (Novu wraps answers in `{"data": …}`), or the bare body."""
    body = read_json(response)
    if isinstance(body, Mapping) and "data" in body:
        return body["data"]
    return body


def _error_text(response: httpx.Response) -> str:
    body = read_json(response)
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, list):  # validation errors come as a list of strings
            message = "; ".join(str(m) for m in message)
        if message:
            return f"HTTP {response.status_code}: {message}"
    raw = response.text.strip()
    return f"HTTP {response.status_code}" + (f": {raw[:200]}" if raw else "")


def _retry_after(response: httpx.Response) -> float | None:
    # Novu sends Retry-After, and the IETF draft's RateLimit-Reset (seconds until reset).
    found = parse_retry_after(response.headers.get("Retry-After"))
    if found is None:
        found = parse_retry_after(response.headers.get("RateLimit-Reset"))
    return found


def classify_error(response: httpx.Response) -> DeliveryResult:
    """A non-2xx answer of any Novu call (its error body is `{statusCode, message, …}`)."""
    status = response.status_code
    detail = _error_text(response)
    if 200 <= status < 300:
        # A trigger counts only as 201 + `processed`; any other success is not Novu's answer
        # (a proxy?). Asking again is safe: Novu dedupes on the transaction id.
        return DeliveryResult(
            outcome=Outcome.RETRY, reason="unexpected_answer", detail=detail, status_code=status
        )
    if status in (401, 403):
        return DeliveryResult(
            outcome=Outcome.PROVIDER_AUTH, reason="provider_auth", detail=detail, status_code=status
        )
    if status == 429:
        return DeliveryResult(
            outcome=Outcome.RATE_LIMITED,
            reason="rate_limited",
            detail=detail,
            retry_after_s=_retry_after(response),
            status_code=status,
        )
    if status >= 500 or status in _RETRY:
        reason = "idempotency_conflict" if status == 409 else f"http_{status}"
        return DeliveryResult(
            outcome=Outcome.RETRY,
            reason=reason,
            detail=detail,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            status_code=status,
        )
    reason = f"http_{status}"
    return DeliveryResult(
        outcome=Outcome.PERMANENT, reason=reason, detail=detail, status_code=status
    )


def judge_event(answer: Mapping[str, Any] | None, transaction_id: str) -> DeliveryResult:
    """One trigger's answer: only `status: processed` is delivered (a 201 can still fail)."""
    if answer is None:
        # Novu dedupes on the transaction id, so asking again is safe.
        return DeliveryResult(
            outcome=Outcome.RETRY, reason="no_answer", detail="Novu gave no answer for the event"
        )
    status = str(answer.get("status") or "unknown")
    if status == PROCESSED:
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=str(answer.get("transactionId") or transaction_id),
            status_code=201,
        )
    errors = answer.get("error")
    text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors or "")
    return DeliveryResult(
        outcome=Outcome.PERMANENT,
        reason=status,
        detail=f"Novu answered status {status}" + (f": {text}" if text else ""),
        status_code=201,
    )


_PUSH_PROVIDERS = {"FCM": "fcm", "APNS": "apns"}
_CHAT_PROVIDERS = {"slack_webhook_url": "slack", "discord_webhook_url": "discord"}


def subscriber_payload(subscriber: Mapping[str, Any], *, subscriber_id: str) -> dict[str, Any]:
    """Novu's subscriber (`to` of a trigger, body of a subscriber update) from ours.

    Push tokens and chat webhooks travel as Novu channel credentials, so Novu reaches the
    devices and chats registered here.
    """
    to: dict[str, Any] = {"subscriberId": subscriber_id}
    for ours, theirs in (
        ("email", "email"),
        ("phone", "phone"),
        ("first_name", "firstName"),
        ("last_name", "lastName"),
        ("locale", "locale"),
        ("avatar", "avatar"),
        ("timezone", "timezone"),
    ):
        value = subscriber.get(ours)
        if isinstance(value, str) and value:
            to[theirs] = value
    channels: list[dict[str, Any]] = []
    tokens: dict[str, list[str]] = {}
    for device in subscriber.get("devices") or []:
        provider = _PUSH_PROVIDERS.get(str(device.get("provider") or "FCM"))
        if provider and device.get("token"):
            tokens.setdefault(provider, []).append(str(device["token"]))
    channels += [
        {"providerId": p, "credentials": {"deviceTokens": t}} for p, t in sorted(tokens.items())
    ]
    chat = subscriber.get("chat") or {}
    for field, provider in _CHAT_PROVIDERS.items():
        if isinstance(chat.get(field), str) and chat[field]:
            channels.append({"providerId": provider, "credentials": {"webhookUrl": chat[field]}})
    if channels:
        to["channels"] = channels
    return to


async def _call(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    api_key: str,
    timeout_s: float,
    json: Any = None,
) -> httpx.Response | DeliveryResult:
    try:
        return await http.request(
            method, url, json=json, headers=headers(api_key), timeout=httpx.Timeout(timeout_s)
        )
    except httpx.HTTPError as exc:
        return classify_transport_error(exc)


def _ok(response: httpx.Response | DeliveryResult, *, gone_is_done: bool) -> DeliveryResult:
    if isinstance(response, DeliveryResult):
        return response
    if 200 <= response.status_code < 300 or (gone_is_done and response.status_code == 404):
        return DeliveryResult(outcome=Outcome.DELIVERED, status_code=response.status_code)
    return classify_error(response)


async def cancel_trigger(
    http: httpx.AsyncClient,
    *,
    endpoint: str | None,
    api_key: str,
    transaction_id: str,
    timeout_s: float,
) -> DeliveryResult:
    """`DELETE /v1/events/trigger/{transactionId}`; a transaction Novu no longer has is done."""
    url = f"{base_url(endpoint)}{TRIGGER_PATH}/{quote(transaction_id, safe='')}"
    answer = await _call(http, "DELETE", url, api_key=api_key, timeout_s=timeout_s)
    return _ok(answer, gone_is_done=True)


async def put_subscriber(
    http: httpx.AsyncClient,
    *,
    endpoint: str | None,
    api_key: str,
    subscriber: Mapping[str, Any],
    subscriber_id: str,
    timeout_s: float,
) -> DeliveryResult:
    """`PUT /v1/subscribers/{id}`; one Novu has never seen is created (`POST /v1/subscribers`)."""
    body = subscriber_payload(subscriber, subscriber_id=subscriber_id)
    base = base_url(endpoint) + SUBSCRIBERS_PATH
    update = {k: v for k, v in body.items() if k not in ("subscriberId", "channels")}
    answer = await _call(
        http,
        "PUT",
        f"{base}/{quote(subscriber_id, safe='')}",
        api_key=api_key,
        timeout_s=timeout_s,
        json=update,
    )
    if isinstance(answer, httpx.Response) and answer.status_code == 404:
        body.pop("channels", None)
        answer = await _call(http, "POST", base, api_key=api_key, timeout_s=timeout_s, json=body)
    return _ok(answer, gone_is_done=False)


async def delete_subscriber(
    http: httpx.AsyncClient,
    *,
    endpoint: str | None,
    api_key: str,
    subscriber_id: str,
    timeout_s: float,
) -> DeliveryResult:
    """`DELETE /v1/subscribers/{id}`; one Novu does not have is deleted already."""
    url = f"{base_url(endpoint)}{SUBSCRIBERS_PATH}/{quote(subscriber_id, safe='')}"
    answer = await _call(http, "DELETE", url, api_key=api_key, timeout_s=timeout_s)
    return _ok(answer, gone_is_done=True)


def subscriber_hash(api_key: str, subscriber_id: str) -> str:
    """Novu's HMAC of a subscriber id, for instances that require it of inbox sessions."""
    return hmac.new(api_key.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()


async def initialize_session(
    http: httpx.AsyncClient,
    *,
    endpoint: str | None,
    api_key: str,
    application_identifier: str,
    subscriber: Mapping[str, Any],
    subscriber_id: str,
    timeout_s: float,
) -> tuple[str | None, DeliveryResult]:
    """`POST /v1/widgets/session/initialize`: Novu's session token for the subscriber."""
    profile = subscriber_payload(subscriber, subscriber_id=subscriber_id)
    profile.pop("channels", None)
    body = {
        "applicationIdentifier": application_identifier,
        **profile,
        "hmacHash": subscriber_hash(api_key, subscriber_id),
    }
    answer = await _call(
        http,
        "POST",
        base_url(endpoint) + SESSION_PATH,
        api_key=api_key,
        timeout_s=timeout_s,
        json=body,
    )
    result = _ok(answer, gone_is_done=False)
    if result.outcome is not Outcome.DELIVERED or not isinstance(answer, httpx.Response):
        return None, result
    data = envelope(answer)
    token = data.get("token") if isinstance(data, Mapping) else None
    if not isinstance(token, str) or not token:
        return None, DeliveryResult(
            outcome=Outcome.RETRY, reason="no_token", detail="Novu's answer held no token"
        )
    return token, result
