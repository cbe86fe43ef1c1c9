"""ApnsProvider against FakeApns over real HTTP/2 (h2c): headers, payload, every classification."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from shared.domain import Channel
from shared.providers.apns import PRODUCTION_URL, SANDBOX_URL, ApnsProvider
from shared.providers.apns_auth import ApnsCredentials
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from tests.fakes.apns import FakeApns

TOKEN = "ab" * 32


def _message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_apns1",
        "tenant_id": "tnt_1",
        "channel": Channel.PUSH,
        "to": TOKEN,
        "title": "New message",
        "body": "You have a new coaching update",
        "data": {"screen": "conversation"},
        "deep_link": "app://conversation/1",
        "priority": 5,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


@pytest.fixture
async def providers(http: httpx.AsyncClient) -> AsyncIterator[list[Provider]]:
    """Adapters built in a test; closed after it (each owns an HTTP/2 client)."""
    made: list[Provider] = []
    yield made
    for provider in made:
        await provider.aclose()


def _provider(
    made: list[Provider],
    http: httpx.AsyncClient,
    apns: FakeApns,
    *,
    endpoint: str | None = None,
    timeout_s: float = 2.0,
    **credentials: Any,
) -> Provider:
    config = ProviderConfig(
        tenant_id="tnt_1",
        provider_type="APNS",
        credentials={**apns.credentials(), **credentials},
        endpoint=endpoint or apns.url,
    )
    provider = build_adapter(
        config=config, resources=AdapterResources(http=http, timeout_s=timeout_s)
    )
    made.append(provider)
    return provider


async def test_delivered_over_http2_with_apple_headers_and_payload(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    result = await _provider(providers, http, apns).send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 200
    [request] = apns.notifications
    assert request.path == f"/3/device/{TOKEN}"
    assert result.provider_message_id == request.headers["apns-id"]
    headers = request.headers
    assert headers["apns-topic"] == "com.example.app"
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == "ntf_apns1"
    assert abs(int(headers["apns-expiration"]) - (time.time() + 86400)) < 60
    assert request.json() == {
        "aps": {
            "alert": {"title": "New message", "body": "You have a new coaching update"},
            "sound": "default",
        },
        "screen": "conversation",
        "deepLink": "app://conversation/1",
    }
    claims = jwt.decode(
        headers["authorization"].split(" ", 1)[1], options={"verify_signature": False}
    )
    assert claims["iss"] == "FAKETEAM12"


async def test_low_priority_and_one_token_for_many_sends(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    provider = _provider(providers, http, apns)
    for _ in range(3):
        assert (await provider.send(_message(priority=1))).outcome is Outcome.DELIVERED
    assert {r.headers["apns-priority"] for r in apns.notifications} == {"5"}
    assert len(apns.tokens_seen) == 1  # the provider token is reused, not signed per send


async def test_unregistered_token_is_invalid_recipient_with_timestamp(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    apns.unregistered[TOKEN] = 1_700_000_000_000

    result = await _provider(providers, http, apns).send(_message())

    assert result.outcome is Outcome.INVALID_RECIPIENT
    assert (result.status_code, result.reason) == (410, "Unregistered")
    assert result.detail == "Unregistered since 1700000000000 (ms since epoch)"


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (400, "BadDeviceToken", Outcome.INVALID_RECIPIENT),
        (400, "DeviceTokenNotForTopic", Outcome.INVALID_RECIPIENT),
        (400, "BadTopic", Outcome.PERMANENT),
        (413, "PayloadTooLarge", Outcome.PERMANENT),
        (403, "InvalidProviderToken", Outcome.PROVIDER_AUTH),
        (403, "BadCertificateEnvironment", Outcome.PROVIDER_AUTH),
        (500, "InternalServerError", Outcome.RETRY),
        (503, "ServiceUnavailable", Outcome.RETRY),
    ],
)
async def test_apple_reasons_are_classified(
    apns: FakeApns,
    http: httpx.AsyncClient,
    providers: list[Provider],
    status: int,
    reason: str,
    outcome: Outcome,
) -> None:
    apns.script(status, reason)

    result = await _provider(providers, http, apns).send(_message())

    assert (result.outcome, result.reason, result.status_code) == (outcome, reason, status)


async def test_bad_device_token_from_the_fake_itself(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    result = await _provider(providers, http, apns).send(_message(to="not-hex"))
    assert (result.outcome, result.reason) == (Outcome.INVALID_RECIPIENT, "BadDeviceToken")


async def test_too_many_requests_is_rate_limited_with_retry_after(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    apns.script(429, "TooManyRequests", headers={"retry-after": "7"})

    result = await _provider(providers, http, apns).send(_message())

    assert (result.outcome, result.retry_after_s) == (Outcome.RATE_LIMITED, 7.0)


async def test_server_error_then_delivered(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    apns.script(503, "ServiceUnavailable")
    provider = _provider(providers, http, apns)

    outcomes = [(await provider.send(_message())).outcome for _ in range(2)]

    assert outcomes == [Outcome.RETRY, Outcome.DELIVERED]


async def test_expired_provider_token_is_signed_anew_and_sent_once_more(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    provider = _provider(providers, http, apns)
    assert (await provider.send(_message())).outcome is Outcome.DELIVERED
    # Apple now calls every token signed before this second expired (as after an hour).
    apns.expire_tokens_issued_before = time.time() + 1

    result = await provider.send(_message())

    # Renewed once and sent once more; the renewed token is still "old" here: no loop.
    assert (result.outcome, result.reason) == (Outcome.PROVIDER_AUTH, "ExpiredProviderToken")
    assert len(apns.requests) == 3
    first, renewed = (r.headers["authorization"] for r in apns.requests[1:3])
    assert first != renewed
    apns.expire_tokens_issued_before = None
    assert (await provider.send(_message())).outcome is Outcome.DELIVERED
    assert apns.requests[-1].headers["authorization"] == renewed


async def test_expired_token_renewal_recovers_in_the_same_send(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    apns.script(403, "ExpiredProviderToken")

    result = await _provider(providers, http, apns).send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert len(apns.requests) == 2


async def test_wrong_key_is_provider_auth(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    other = FakeApns()  # a key Apple never issued to this team

    result = await _provider(providers, http, apns, privateKey=other.private_key_pem).send(
        _message()
    )

    assert (result.outcome, result.reason) == (Outcome.PROVIDER_AUTH, "InvalidProviderToken")
    assert apns.notifications == []


async def test_timeout_retries(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider]
) -> None:
    apns.delay_s = 1.0

    result = await _provider(providers, http, apns, timeout_s=0.2).send(_message())

    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


async def test_connection_refused_retries(
    apns: FakeApns, http: httpx.AsyncClient, providers: list[Provider], closed_url: str
) -> None:
    result = await _provider(providers, http, apns, endpoint=closed_url).send(_message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


async def test_sandbox_and_production_hosts(apns: FakeApns) -> None:
    for production, host in ((False, SANDBOX_URL), (True, PRODUCTION_URL)):
        credentials = ApnsCredentials.model_validate(
            {**apns.credentials(), "production": production}
        )
        adapter = ApnsProvider(credentials=credentials, endpoint=None, timeout_s=1)
        try:
            assert str(adapter._http.base_url).rstrip("/") == host
        finally:
            await adapter.aclose()
