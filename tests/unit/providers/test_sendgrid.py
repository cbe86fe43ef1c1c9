"""SendGridProvider against FakeSendGrid over real HTTP: the body it sends, every classification."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.sendgrid import classify_response
from shared.providers.spec import AdapterResources
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid


def _message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_1",
        "tenant_id": "tnt_1",
        "channel": Channel.EMAIL,
        "to": "ada@example.com",
        "subject": "Your receipt",
        "body": "Thanks for your order.",
        "html": "<p>Thanks for your order.</p>",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def _provider(
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    timeout_s: float = 2.0,
    **credentials: Any,
) -> Provider:
    creds: dict[str, Any] = {
        "apiKey": DEFAULT_API_KEY,
        "fromEmail": "noreply@acme.test",
        "fromName": "Acme",
    }
    creds.update(credentials)
    config = ProviderConfig(
        tenant_id="tnt_1", provider_type="SENDGRID", credentials=creds, endpoint=endpoint
    )
    # Through the registry, as the worker builds it: bad credentials are caught on that path.
    return build_adapter(config=config, resources=AdapterResources(http=http, timeout_s=timeout_s))


async def test_delivered_with_message_id_and_v3_body(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 202
    assert result.provider_message_id == sendgrid.message_ids[0]
    assert sendgrid.mails == [
        {
            "personalizations": [{"to": [{"email": "ada@example.com"}]}],
            "from": {"email": "noreply@acme.test", "name": "Acme"},
            "subject": "Your receipt",
            "content": [
                {"type": "text/plain", "value": "Thanks for your order."},
                {"type": "text/html", "value": "<p>Thanks for your order.</p>"},
            ],
            "custom_args": {"notification_id": "ntf_1", "tenant_id": "tnt_1"},
        }
    ]
    (request,) = sendgrid.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert request.headers["content-type"] == "application/json"


async def test_plain_text_only_and_no_sender_name(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    provider = _provider(http, sendgrid.url, fromName=None)

    result = await provider.send(_message(html=None))

    assert result.outcome is Outcome.DELIVERED
    (mail,) = sendgrid.mails
    assert mail["from"] == {"email": "noreply@acme.test"}
    assert mail["content"] == [{"type": "text/plain", "value": "Thanks for your order."}]


async def test_unknown_api_key_is_provider_auth(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, sendgrid.url, apiKey="SG.revoked").send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.status_code == 401
    assert result.detail == "The provided authorization grant is invalid, expired, or revoked"
    assert sendgrid.mails == []


async def test_forbidden_sender_is_provider_auth(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.script_error(
        403,
        "The from address does not match a verified Sender Identity.",
        field="from",
    )

    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "forbidden"
    assert result.detail is not None
    assert result.detail.startswith(
        "from: The from address does not match a verified Sender Identity."
    )


async def test_rate_limited_reads_x_ratelimit_reset(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.script_rate_limit(reset_in_s=30)

    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.RATE_LIMITED
    assert result.status_code == 429
    assert result.retry_after_s is not None
    # The header has whole-second resolution.
    assert 28 <= result.retry_after_s <= 30
    assert result.detail == "too many requests"


async def test_rate_limited_prefers_retry_after(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.script_error(
        429, "too many requests", headers={"Retry-After": "7", "X-RateLimit-Reset": "0"}
    )

    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after_s == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_retry(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient, status: int
) -> None:
    sendgrid.script_error(status)

    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.status_code == status
    assert result.reason == "server_error"
    assert result.detail == "An internal server error occurred."


async def test_scripted_failures_then_normal_answers(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.script_error(503, times=2)
    provider = _provider(http, sendgrid.url)

    outcomes = [(await provider.send(_message())).outcome for _ in range(3)]

    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DELIVERED]
    assert len(sendgrid.requests) == 3
    assert len(sendgrid.mails) == 1


async def test_invalid_address_is_permanent_with_sendgrid_detail(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, sendgrid.url).send(_message(to="not-an-address"))

    assert result.outcome is Outcome.PERMANENT
    assert result.status_code == 400
    assert result.reason == "bad_request"
    assert result.detail is not None
    assert result.detail.startswith(
        "personalizations.0.to.0.email: Does not contain a valid address."
    )


async def test_every_validation_error_is_joined(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, sendgrid.url).send(_message(to="nope", subject=None))

    assert result.outcome is Outcome.PERMANENT
    assert result.detail is not None
    assert "personalizations.0.to.0.email: Does not contain a valid address." in result.detail
    assert "subject: The subject is required." in result.detail
    assert result.detail.count("; ") == 1


async def test_payload_too_large_is_permanent(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.script_error(413, "The JSON payload you have included in your request is too large.")

    result = await _provider(http, sendgrid.url).send(_message())

    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "payload_too_large"
    assert result.detail == "The JSON payload you have included in your request is too large."


async def test_connection_refused_retries(http: httpx.AsyncClient, closed_url: str) -> None:
    result = await _provider(http, closed_url).send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "connection_error"
    assert result.status_code is None


async def test_timeout_retries(sendgrid: FakeSendGrid, http: httpx.AsyncClient) -> None:
    sendgrid.hold()

    result = await _provider(http, sendgrid.url, timeout_s=0.05).send(_message())

    assert result.outcome is Outcome.RETRY
    assert result.reason == "timeout"
    assert result.detail is not None
    assert result.detail.startswith("ReadTimeout")


async def test_held_answer_goes_out_on_release(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    sendgrid.hold()
    send = asyncio.create_task(_provider(http, sendgrid.url).send(_message()))

    await sendgrid.wait_for_requests(1)
    assert not send.done()
    sendgrid.release()

    assert (await send).outcome is Outcome.DELIVERED


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [({"apiKey": None}, "apiKey"), ({"fromEmail": ""}, "fromEmail"), ({"fromName": 3}, "fromName")],
)
async def test_unusable_credentials_are_provider_auth_without_a_request(
    sendgrid: FakeSendGrid,
    http: httpx.AsyncClient,
    credentials: dict[str, Any],
    missing: str,
) -> None:
    result = await _provider(http, sendgrid.url, **credentials).send(_message())

    assert result.outcome is Outcome.PROVIDER_AUTH
    assert result.reason == "invalid_credentials"
    assert result.detail is not None
    assert missing in result.detail
    assert sendgrid.requests == []


def test_accepted_without_message_id_header() -> None:
    result = classify_response(httpx.Response(202))

    assert result.outcome is Outcome.DELIVERED
    assert result.provider_message_id is None


def test_error_without_sendgrid_body_keeps_raw_text() -> None:
    result = classify_response(httpx.Response(502, text="<html>Bad Gateway</html>"))

    assert result.outcome is Outcome.RETRY
    assert result.detail == "HTTP 502: <html>Bad Gateway</html>"


def test_other_client_errors_are_permanent() -> None:
    result = classify_response(httpx.Response(404, json={"errors": [{"message": "not found"}]}))

    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "http_404"
    assert result.detail == "not found"


async def test_aclose_leaves_the_shared_client_open(
    sendgrid: FakeSendGrid, http: httpx.AsyncClient
) -> None:
    provider = _provider(http, sendgrid.url)
    await provider.aclose()

    assert not http.is_closed
    assert (await provider.send(_message())).outcome is Outcome.DELIVERED
