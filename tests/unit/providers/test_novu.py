"""NovuProvider and the other Novu calls against FakeNovu over real HTTP: every answer mapped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers import novu_api
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from tests.fakes.novu import DEFAULT_APP_ID, FakeNovu

SUBSCRIBER = {
    "subscriber_id": "u1",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "locale": "en-GB",
    "devices": [
        {"token": "fcm-1", "device_id": "d1"},
        {"token": "ab" * 32, "device_id": "d2", "provider": "APNS"},
    ],
}


@pytest.fixture(scope="module")
async def novu_server() -> AsyncIterator[FakeNovu]:
    """One FakeNovu per module."""
    async with FakeNovu() as fake:
        yield fake


@pytest.fixture
def novu(novu_server: FakeNovu) -> FakeNovu:
    """The module's FakeNovu, as fresh as a new one."""
    novu_server.reset()
    novu_server.inactive.clear()
    return novu_server


def _message(n: int = 1, *, in_bulk: bool = False, **overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": f"ntf_{n}",
        "tenant_id": "tnt_1",
        "channel": Channel.PUSH,
        "to": "fcm-1",
        "title": "Hello",
        "body": "A notification",
        "data": {"screen": "home"},
        "deep_link": "app://home",
        "recipient_id": SUBSCRIBER["subscriber_id"],
        "subscriber": SUBSCRIBER,
        "in_bulk": in_bulk,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def _provider(http: httpx.AsyncClient, novu: FakeNovu, **credentials: Any) -> Provider:
    config = ProviderConfig(
        tenant_id="tnt_1",
        provider_type="NOVU",
        credentials=novu.credentials(**credentials),
        endpoint=novu.url,
    )
    return build_adapter(config=config, resources=AdapterResources(http=http, timeout_s=2.0))


async def test_trigger_carries_workflow_subscriber_payload_and_transaction(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, novu).send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.provider_message_id == "ntf_1"
    [request] = novu.requests
    assert request.path == "/v1/events/trigger"
    assert request.headers["authorization"] == f"ApiKey {novu.api_key}"
    assert request.headers["idempotency-key"] == "ntf_1"
    assert request.json() == {
        "name": "push-wf",
        "to": {
            "subscriberId": "u1",
            "email": "ada@example.com",
            "phone": "+14155550100",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "locale": "en-GB",
            "channels": [
                {"providerId": "apns", "credentials": {"deviceTokens": ["ab" * 32]}},
                {"providerId": "fcm", "credentials": {"deviceTokens": ["fcm-1"]}},
            ],
        },
        "payload": {
            "body": "A notification",
            "channel": "PUSH",
            "title": "Hello",
            "deepLink": "app://home",
            "data": {"screen": "home"},
        },
        "transactionId": "ntf_1",
    }


@pytest.mark.parametrize(
    "status",
    [
        "trigger_not_active",
        "no_workflow_steps_defined",
        "no_workflow_active_steps_defined",
        "invalid_recipients",
        "error",
        "a_status_novu_adds_later",
    ],
)
async def test_any_status_but_processed_is_a_permanent_failure_naming_it(
    novu: FakeNovu, http: httpx.AsyncClient, status: str
) -> None:
    novu.statuses["u1"] = status

    result = await _provider(http, novu).send(_message())

    assert (result.outcome, result.reason, result.status_code) == (Outcome.PERMANENT, status, 201)
    assert result.detail == f"Novu answered status {status}: {status} for u1"


async def test_an_inactive_workflow_reads_trigger_not_active(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    novu.workflows.discard("push-wf")
    novu.inactive.add("push-wf")
    result = await _provider(http, novu).send(_message())
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "trigger_not_active")
    novu.workflows.add("push-wf")


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (401, Outcome.PROVIDER_AUTH, "provider_auth"),
        (403, Outcome.PROVIDER_AUTH, "provider_auth"),
        (400, Outcome.PERMANENT, "http_400"),
        (404, Outcome.PERMANENT, "http_404"),
        (413, Outcome.PERMANENT, "http_413"),
        (422, Outcome.PERMANENT, "http_422"),
        (408, Outcome.RETRY, "http_408"),
        (409, Outcome.RETRY, "idempotency_conflict"),
        (500, Outcome.RETRY, "http_500"),
        (503, Outcome.RETRY, "http_503"),
    ],
)
async def test_http_errors(
    novu: FakeNovu, http: httpx.AsyncClient, status: int, outcome: Outcome, reason: str
) -> None:
    novu.script_error(status, "it went wrong")

    result = await _provider(http, novu).send(_message())

    assert (result.outcome, result.reason, result.status_code) == (outcome, reason, status)
    assert result.detail == f"HTTP {status}: it went wrong"


async def test_only_201_counts_even_with_processed(novu: FakeNovu, http: httpx.AsyncClient) -> None:
    novu.script(200, body={"data": {"acknowledged": True, "status": "processed"}})
    result = await _provider(http, novu).send(_message())
    assert (result.outcome, result.reason, result.status_code) == (
        Outcome.RETRY,
        "unexpected_answer",
        200,
    )


async def test_a_refused_key_is_provider_auth(novu: FakeNovu, http: httpx.AsyncClient) -> None:
    result = await _provider(http, novu, apiKey="nv-revoked").send(_message())
    assert (result.outcome, result.detail) == (
        Outcome.PROVIDER_AUTH,
        "HTTP 401: API Key not found",
    )


async def test_429_is_rate_limited_with_retry_after(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    novu.script_rate_limit(retry_after_s=7)
    result = await _provider(http, novu).send(_message())
    assert (result.outcome, result.retry_after_s) == (Outcome.RATE_LIMITED, 7.0)


async def test_a_retry_after_409_uses_the_same_key_and_novu_triggers_once(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    provider = _provider(http, novu)
    novu.script_error(409, "Request with key ntf_1 is currently being processed")
    first = await provider.send(_message())
    second = await provider.send(_message())
    third = await provider.send(_message())  # a duplicate after success: Novu's first answer
    assert [first.outcome, second.outcome, third.outcome] == [
        Outcome.RETRY,
        Outcome.DELIVERED,
        Outcome.DELIVERED,
    ]
    assert {r.headers["idempotency-key"] for r in novu.requests} == {"ntf_1"}
    assert len(novu.triggers) == 1


async def test_refused_connection_is_retry(closed_url: str, http: httpx.AsyncClient) -> None:
    config = ProviderConfig(
        tenant_id="t",
        provider_type="NOVU",
        credentials={"apiKey": "k", "workflowIds": {"PUSH": "wf"}},
        endpoint=closed_url,
    )
    adapter = build_adapter(config=config, resources=AdapterResources(http=http, timeout_s=1))
    result = await adapter.send(_message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


async def test_a_channel_without_a_workflow_is_permanent(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, novu).send(_message(channel=Channel.SMS))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "no_workflow")
    assert novu.requests == []


async def test_concurrent_sends_of_a_bulk_go_in_one_request_each_judged_alone(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    novu.statuses["u3"] = "invalid_recipients"
    provider = _provider(http, novu)
    messages = [_message(n, in_bulk=True, recipient_id=f"u{n}", subscriber={}) for n in range(1, 6)]

    results = await asyncio.gather(*(provider.send(m) for m in messages))

    assert novu.bulk_sizes == [5]
    assert [r.path for r in novu.requests] == ["/v1/events/trigger/bulk"]
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2 + [Outcome.PERMANENT] + [
        Outcome.DELIVERED
    ] * 2
    assert results[2].reason == "invalid_recipients"
    assert [r.provider_message_id for r in results if r.outcome is Outcome.DELIVERED] == [
        "ntf_1",
        "ntf_2",
        "ntf_4",
        "ntf_5",
    ]


async def test_a_bulk_refused_whole_fails_every_event(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    novu.script_error(503, "down", route="bulk")
    provider = _provider(http, novu)
    messages = [_message(n, in_bulk=True) for n in range(1, 4)]
    results = await asyncio.gather(*(provider.send(m) for m in messages))
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.RETRY, "http_503")}


async def test_more_than_100_concurrent_sends_are_split(
    novu: FakeNovu, http: httpx.AsyncClient
) -> None:
    provider = _provider(http, novu)
    messages = [_message(n, in_bulk=True, subscriber={}) for n in range(150)]
    results = await asyncio.gather(*(provider.send(m) for m in messages))
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert sum(novu.bulk_sizes) == 150
    assert max(novu.bulk_sizes) == 100


async def test_cancel_subscriber_and_session_calls(novu: FakeNovu, http: httpx.AsyncClient) -> None:
    common: dict[str, Any] = {"endpoint": novu.url, "api_key": novu.api_key, "timeout_s": 2}
    await _provider(http, novu).send(_message())
    cancelled = await novu_api.cancel_trigger(http, transaction_id="ntf_1", **common)
    assert cancelled.outcome is Outcome.DELIVERED
    assert novu.cancelled == ["ntf_1"]

    # A subscriber Novu has never seen is created; one it has is updated.
    new = {"email": "grace@example.com", "first_name": "Grace"}
    made = await novu_api.put_subscriber(http, subscriber=new, subscriber_id="u9", **common)
    assert made.outcome is Outcome.DELIVERED
    assert [(r.method, r.path) for r in novu.requests[-2:]] == [
        ("PUT", "/v1/subscribers/u9"),
        ("POST", "/v1/subscribers"),
    ]
    changed = {**new, "email": "grace@acme.test"}
    await novu_api.put_subscriber(http, subscriber=changed, subscriber_id="u9", **common)
    assert novu.subscribers["u9"]["email"] == "grace@acme.test"
    gone = await novu_api.delete_subscriber(http, subscriber_id="u9", **common)
    again = await novu_api.delete_subscriber(http, subscriber_id="u9", **common)
    assert (gone.outcome, again.outcome) == (Outcome.DELIVERED, Outcome.DELIVERED)
    assert novu.deleted_subscribers == ["u9"]

    token, result = await novu_api.initialize_session(
        http,
        application_identifier=DEFAULT_APP_ID,
        subscriber=SUBSCRIBER,
        subscriber_id="u1",
        **common,
    )
    assert result.outcome is Outcome.DELIVERED
    assert token is not None
    assert token.startswith("novu-session-")
    [session] = novu.sessions
    assert session["subscriberId"] == "u1"
    assert session["hmacHash"] == novu_api.subscriber_hash(novu.api_key, "u1")


def test_socket_urls() -> None:
    assert novu_api.socket_url(None, None) == "wss://ws.novu.co"
    assert novu_api.socket_url("https://eu.api.novu.co", None) == "wss://eu.ws.novu.co"
    assert novu_api.socket_url("https://novu.acme.test", "wss://ws.acme.test") == (
        "wss://ws.acme.test"
    )
