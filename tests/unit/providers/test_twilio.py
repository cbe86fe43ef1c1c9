"""TwilioProvider against FakeTwilio over real HTTP: the form it posts, every classification."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio


def _message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_sms1",
        "tenant_id": "tnt_1",
        "channel": Channel.SMS,
        "to": "+14155550100",
        "title": "Code",
        "body": "Your code is 123456.",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def _provider(
    http: httpx.AsyncClient,
    twilio: FakeTwilio,
    *,
    endpoint: str | None = None,
    timeout_s: float = 2.0,
    **credentials: Any,
) -> Provider:
    config = ProviderConfig(
        tenant_id="tnt_1",
        provider_type="TWILIO",
        credentials=twilio.credentials(**credentials),
        endpoint=endpoint or twilio.url,
    )
    return build_adapter(config=config, resources=AdapterResources(http=http, timeout_s=timeout_s))


async def test_delivered_as_a_form_with_basic_auth(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, twilio).send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 201
    assert result.provider_message_id == twilio.sids[0]
    assert twilio.messages == [
        {"To": "+14155550100", "Body": "Code\nYour code is 123456.", "From": "+15005550006"}
    ]
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


async def test_messaging_service_picks_the_sender(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    provider = _provider(http, twilio, fromNumber=None, messagingServiceSid="MG" + "a" * 32)
    assert (await provider.send(_message(title=None))).outcome is Outcome.DELIVERED
    assert twilio.messages == [
        {
            "To": "+14155550100",
            "Body": "Your code is 123456.",
            "MessagingServiceSid": "MG" + "a" * 32,
        }
    ]


@pytest.mark.parametrize(
    ("number_set", "code", "outcome"),
    [
        ("invalid_numbers", "21211", Outcome.INVALID_RECIPIENT),
        ("landlines", "21614", Outcome.INVALID_RECIPIENT),
        ("opted_out", "21610", Outcome.OPTED_OUT),
    ],
)
async def test_dead_or_opted_out_numbers(
    twilio: FakeTwilio, http: httpx.AsyncClient, number_set: str, code: str, outcome: Outcome
) -> None:
    getattr(twilio, number_set).add("+14155550100")

    result = await _provider(http, twilio).send(_message())

    assert (result.outcome, result.reason, result.status_code) == (outcome, code, 400)
    assert result.detail is not None
    assert result.detail.startswith(f"{code}: ")


async def test_malformed_number_is_21211(twilio: FakeTwilio, http: httpx.AsyncClient) -> None:
    result = await _provider(http, twilio).send(_message(to="12345"))
    assert (result.outcome, result.reason) == (Outcome.INVALID_RECIPIENT, "21211")


async def test_wrong_auth_token_is_provider_auth(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    result = await _provider(http, twilio, authToken="wrong").send(_message())
    assert (result.outcome, result.reason, result.status_code) == (
        Outcome.PROVIDER_AUTH,
        "20003",
        401,
    )


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, 21408, Outcome.PERMANENT),  # geo permission: our config, not the number
        (400, 21606, Outcome.PERMANENT),
        (403, 20008, Outcome.PROVIDER_AUTH),
        (500, 20500, Outcome.RETRY),
        (503, 20503, Outcome.RETRY),
    ],
)
async def test_other_codes(
    twilio: FakeTwilio, http: httpx.AsyncClient, status: int, code: int, outcome: Outcome
) -> None:
    twilio.script_error(status, code, "scripted")
    result = await _provider(http, twilio).send(_message())
    assert (result.outcome, result.reason) == (outcome, str(code))


async def test_too_many_requests_honours_retry_after(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    twilio.script_error(429, 20429, "Too Many Requests", headers={"Retry-After": "3"})
    result = await _provider(http, twilio).send(_message())
    assert (result.outcome, result.reason, result.retry_after_s) == (
        Outcome.RATE_LIMITED,
        "20429",
        3.0,
    )


async def test_html_bad_gateway_then_delivered(twilio: FakeTwilio, http: httpx.AsyncClient) -> None:
    twilio.script(502, body="<html>Bad Gateway</html>")
    provider = _provider(http, twilio)
    first, second = [await provider.send(_message()) for _ in range(2)]
    assert (first.outcome, first.reason) == (Outcome.RETRY, "HTTP_502")
    assert second.outcome is Outcome.DELIVERED


async def test_timeout_and_refused_connection_retry(
    twilio: FakeTwilio, http: httpx.AsyncClient, closed_url: str
) -> None:
    twilio.hold()
    result = await _provider(http, twilio, timeout_s=0.05).send(_message())
    twilio.release()
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")
    result = await _provider(http, twilio, endpoint=closed_url).send(_message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


async def test_long_text_is_cut_to_twilios_limit(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    assert (await _provider(http, twilio).send(_message(body="x" * 5000))).outcome is (
        Outcome.DELIVERED
    )
    assert len(twilio.messages[0]["Body"]) == 1600
