"""FcmProvider against FakeFcm over real HTTP: OAuth grant, token cache, body, classifications."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.fcm import classify_response
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from tests.fakes.fcm import FakeFcm

MakeProvider = Callable[..., Provider]


def _message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_1",
        "tenant_id": "tnt_1",
        "channel": Channel.PUSH,
        "to": "device-token-1",
        "title": "New message",
        "body": "Ada: are you there?",
        "data": {"conversationId": "conv_abc"},
        "deep_link": "socayo://conversation/conv_abc",
        "image_url": "https://cdn.example.com/a.png",
        "priority": 5,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


@pytest.fixture
async def make_provider(
    fcm: FakeFcm, http: httpx.AsyncClient, service_account_json: str
) -> AsyncIterator[MakeProvider]:
    """Builds adapters pointed at the fake (overridable) and closes them after the test."""
    made: list[Provider] = []

    def make(
        *, credentials: Any = None, endpoint: str | None = None, timeout_s: float = 2.0
    ) -> Provider:
        config = ProviderConfig(
            tenant_id="tnt_1",
            provider_type="FCM",
            credentials=(
                credentials
                if credentials is not None
                else {"serviceAccountJson": service_account_json}
            ),
            endpoint=endpoint or fcm.url,
        )
        # Through the registry, as the worker builds it: bad credentials are caught on that path.
        provider = build_adapter(
            config=config, resources=AdapterResources(http=http, timeout_s=timeout_s)
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def test_delivered_with_name_and_v1_body(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    result = await make_provider().send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 200
    assert result.provider_message_id == fcm.message_names[0]
    assert result.provider_message_id.startswith("projects/fake-project/messages/0:")
    assert fcm.messages == [
        {
            "token": "device-token-1",
            "notification": {
                "title": "New message",
                "body": "Ada: are you there?",
                "image": "https://cdn.example.com/a.png",
            },
            "data": {
                "conversationId": "conv_abc",
                "deepLink": "socayo://conversation/conv_abc",
            },
            "android": {"priority": "HIGH"},
            "apns": {"headers": {"apns-priority": "10"}},
        }
    ]
    (send,) = fcm.send_requests
    assert send.path == "/v1/projects/fake-project/messages:send"
    assert send.headers["authorization"].startswith("Bearer ya29.fake-")


async def test_normal_priority_without_extras(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    message = _message(priority=1, data={}, deep_link=None, image_url=None)

    assert (await make_provider().send(message)).outcome is Outcome.DELIVERED

    (sent,) = fcm.messages
    assert sent["notification"] == {"title": "New message", "body": "Ada: are you there?"}
    assert sent["data"] == {}
    assert sent["android"] == {"priority": "NORMAL"}
    assert sent["apns"] == {"headers": {"apns-priority": "5"}}


async def test_token_is_fetched_once_and_cached(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    provider = make_provider()

    first = await provider.send(_message())
    second = await provider.send(_message(to="device-token-2"))

    assert (first.outcome, second.outcome) == (Outcome.DELIVERED, Outcome.DELIVERED)
    (token_request,) = fcm.token_requests
    form = token_request.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert form["assertion"].count(".") == 2
    assert fcm.tokens_issued == 1


async def test_concurrent_sends_share_one_token_fetch(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    provider = make_provider()

    results = await asyncio.gather(*(provider.send(_message(to=f"dev-{i}")) for i in range(5)))

    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert len(fcm.token_requests) == 1


async def test_token_near_expiry_is_refreshed(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    # Shorter than the refresh margin, so every send finds its token about to expire.
    fcm.token_lifetime_s = 60
    provider = make_provider()

    await provider.send(_message())
    await provider.send(_message())

    assert len(fcm.token_requests) == 2


async def test_unregistered_token_is_invalid_recipient(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.unregistered_tokens.add("stale-token")

    result = await make_provider().send(_message(to="stale-token"))

    assert result.outcome is Outcome.INVALID_RECIPIENT
    assert result.reason == "UNREGISTERED"
    assert result.status_code == 404
    assert result.detail == "UNREGISTERED: Requested entity was not found."


async def test_malformed_token_is_invalid_recipient(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.invalid_tokens.add("garbled")

    result = await make_provider().send(_message(to="garbled"))

    assert result.outcome is Outcome.INVALID_RECIPIENT
    assert result.reason == "INVALID_ARGUMENT"
    assert result.status_code == 400
    assert result.detail is not None
    assert "not a valid FCM registration token" in result.detail


async def test_invalid_payload_is_permanent(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    # FCM reserves the "from" data key; the fake refuses it the way FCM does.
    result = await make_provider().send(_message(data={"from": "me"}))

    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "INVALID_ARGUMENT"
    assert result.detail == "INVALID_ARGUMENT: Invalid data payload key: from"
    assert fcm.messages == []


async def test_sender_id_mismatch_is_invalid_recipient(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.script_error("PERMISSION_DENIED", "SenderId mismatch", error_code="SENDER_ID_MISMATCH")

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.INVALID_RECIPIENT
    assert result.reason == "SENDER_ID_MISMATCH"
    assert result.status_code == 403


async def test_quota_exceeded_is_rate_limited_with_retry_after(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.script_error(
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests'.",
        error_code="QUOTA_EXCEEDED",
        headers={"Retry-After": "30"},
    )

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.RATE_LIMITED
    assert result.reason == "QUOTA_EXCEEDED"
    assert result.retry_after_s == 30.0
    assert result.status_code == 429


async def test_bare_429_is_rate_limited(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    fcm.script(429, body="Too Many Requests")

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after_s is None


@pytest.mark.parametrize(("status", "code"), [("UNAVAILABLE", 503), ("INTERNAL", 500)])
async def test_server_side_errors_retry(
    fcm: FakeFcm, make_provider: MakeProvider, status: str, code: int
) -> None:
    fcm.script_error(status, "The service is currently unavailable.", error_code=status)

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == status
    assert result.status_code == code


async def test_revoked_access_token_is_provider_auth_then_refetched(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    assert (await provider.send(_message())).outcome is Outcome.DELIVERED
    fcm.revoke_tokens()

    refused = await provider.send(_message())
    recovered = await provider.send(_message())

    assert refused.outcome is Outcome.PROVIDER_AUTH
    assert refused.reason == "UNAUTHENTICATED"
    assert refused.status_code == 401
    assert recovered.outcome is Outcome.DELIVERED
    assert len(fcm.token_requests) == 2


async def test_third_party_auth_error_keeps_our_token(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.script_error(
        "UNAUTHENTICATED",
        "Auth error from APNS or Web Push Service",
        error_code="THIRD_PARTY_AUTH_ERROR",
    )
    provider = make_provider()

    result = await provider.send(_message())
    await provider.send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "THIRD_PARTY_AUTH_ERROR"
    assert len(fcm.token_requests) == 1


async def test_permission_denied_is_provider_auth(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.script_error("PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied")

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "PERMISSION_DENIED"


async def test_unknown_key_gets_invalid_grant(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    foreign = fcm.service_account_json(registered=False)

    result = await make_provider(credentials={"serviceAccountJson": foreign}).send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "token_refused"
    assert result.detail is not None
    assert result.detail.startswith("invalid_grant")
    assert fcm.send_requests == []


async def test_revoked_service_account_gets_invalid_grant(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    account = fcm.service_account_json()
    fcm.revoke_service_account(account)

    result = await make_provider(credentials={"serviceAccountJson": account}).send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.detail == "invalid_grant: Invalid grant: account not found"


async def test_token_endpoint_unreachable_retries(
    make_provider: MakeProvider, service_account_json: str, closed_url: str
) -> None:
    info = json.loads(service_account_json)
    info["token_uri"] = f"{closed_url}/token"

    result = await make_provider(credentials={"serviceAccountJson": info}).send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "token_endpoint_unreachable"


async def test_token_endpoint_outage_retries_without_backoff(
    fcm: FakeFcm, make_provider: MakeProvider
) -> None:
    fcm.script_token(503, body={"error": "server_error"})

    result = await make_provider().send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "token_endpoint_unavailable"
    # google-auth's own back-off would have asked three times, sleeping in between.
    assert len(fcm.token_requests) == 1


async def test_service_account_as_dict_is_accepted(
    fcm: FakeFcm, make_provider: MakeProvider, service_account_json: str
) -> None:
    info = json.loads(service_account_json)

    result = await make_provider(credentials={"serviceAccountJson": info}).send(_message())

    assert result.outcome is Outcome.DELIVERED


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({}, "credentials.serviceAccountJson is required for FCM"),
        (
            {"serviceAccountJson": "{not json"},
            "credentials.serviceAccountJson must be a service-account JSON document",
        ),
        ({"serviceAccountJson": "[1, 2]"}, "must be a service-account JSON document"),
        (
            {"serviceAccountJson": {"type": "authorized_user"}},
            "credentials.serviceAccountJson.type must be 'service_account'",
        ),
        (
            {"serviceAccountJson": {"type": "service_account"}},
            "credentials.serviceAccountJson lacks project_id",
        ),
        (
            {"serviceAccountJson": {"project_id": "p", "client_email": "a@b", "token_uri": "x"}},
            "credentials.serviceAccountJson lacks private_key",
        ),
        (
            {
                "serviceAccountJson": {
                    "project_id": "p",
                    "client_email": "a@b",
                    "token_uri": "x",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
                }
            },
            "credentials.serviceAccountJson is not a usable service account",
        ),
    ],
)
async def test_unusable_service_account_is_provider_auth(
    fcm: FakeFcm, make_provider: MakeProvider, credentials: dict[str, Any], expected: str
) -> None:
    result = await make_provider(credentials=credentials).send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "invalid_credentials"
    assert result.detail is not None
    assert expected in result.detail
    assert fcm.requests == []


async def test_connection_refused_retries(
    fcm: FakeFcm, make_provider: MakeProvider, closed_url: str
) -> None:
    result = await make_provider(endpoint=closed_url).send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "connection_error"
    assert len(fcm.token_requests) == 1


async def test_timeout_retries(fcm: FakeFcm, make_provider: MakeProvider) -> None:
    provider = make_provider(timeout_s=0.2)
    assert (await provider.send(_message())).outcome is Outcome.DELIVERED
    fcm.hold()

    result = await provider.send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "timeout"


def test_non_json_gateway_error_retries() -> None:
    result = classify_response(httpx.Response(502, text="<html>Bad Gateway</html>"))

    assert result.outcome is Outcome.RETRY
    assert result.reason == "HTTP_502"
    assert result.detail == "HTTP 502: <html>Bad Gateway</html>"


def test_invalid_argument_naming_the_token_only_in_message() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "The registration token is not a valid FCM registration token",
            "status": "INVALID_ARGUMENT",
        }
    }

    result = classify_response(httpx.Response(400, json=body))

    assert result.outcome is Outcome.INVALID_RECIPIENT
    assert result.reason == "INVALID_ARGUMENT"
