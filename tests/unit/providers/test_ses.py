"""SesProvider (aiobotocore) against FakeSes: SigV4 checked, SES v2 errors, no botocore retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from tests.fakes.ses import FakeSes


def _message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_ses1",
        "tenant_id": "tnt_1",
        "channel": Channel.EMAIL,
        "to": "ada@example.com",
        "subject": "Your receipt",
        "body": "Thanks for your order.",
        "html": "<p>Thanks</p>",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


@pytest.fixture
async def providers() -> AsyncIterator[list[Provider]]:
    """Adapters built in a test; closed after it (each owns an aiobotocore client)."""
    made: list[Provider] = []
    yield made
    for provider in made:
        await provider.aclose()


@pytest.fixture
def make(http: httpx.AsyncClient, ses: FakeSes, providers: list[Provider]) -> Any:
    """Build an SES adapter against the fake (or `endpoint`)."""

    def build(
        *, endpoint: str | None = None, timeout_s: float = 2.0, **credentials: Any
    ) -> Provider:
        config = ProviderConfig(
            tenant_id="tnt_1",
            provider_type="SES",
            credentials=ses.credentials(**credentials),
            endpoint=endpoint or ses.url,
        )
        provider = build_adapter(
            config=config, resources=AdapterResources(http=http, timeout_s=timeout_s)
        )
        providers.append(provider)
        return provider

    return build


async def test_delivered_with_message_id_and_v2_body(ses: FakeSes, make: Any) -> None:
    result = await make(fromName="Acme", configurationSet="receipts").send(_message())

    assert result.outcome is Outcome.DELIVERED
    assert result.provider_message_id == ses.message_ids[0]
    [email] = ses.emails
    assert email["FromEmailAddress"] == "Acme <noreply@acme.test>"
    assert email["Destination"] == {"ToAddresses": ["ada@example.com"]}
    assert email["Content"]["Simple"]["Subject"]["Data"] == "Your receipt"
    assert email["Content"]["Simple"]["Body"]["Text"]["Data"] == "Thanks for your order."
    assert email["Content"]["Simple"]["Body"]["Html"]["Data"] == "<p>Thanks</p>"
    assert email["ConfigurationSetName"] == "receipts"
    assert {"Name": "notification_id", "Value": "ntf_ses1"} in email["EmailTags"]
    [request] = ses.requests
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE")


async def test_wrong_secret_is_provider_auth(ses: FakeSes, make: Any) -> None:
    result = await make(secretAccessKey="not-the-secret").send(_message())
    assert (result.outcome, result.reason, result.status_code) == (
        Outcome.PROVIDER_AUTH,
        "SignatureDoesNotMatch",
        403,
    )


async def test_unknown_key_is_provider_auth(ses: FakeSes, make: Any) -> None:
    result = await make(accessKeyId="AKIAUNKNOWN000000000").send(_message())
    assert (result.outcome, result.reason) == (Outcome.PROVIDER_AUTH, "UnrecognizedClientException")


async def test_unverified_sender_is_permanent(ses: FakeSes, make: Any) -> None:
    result = await make(fromEmail="noreply@elsewhere.test").send(_message())
    assert (result.outcome, result.reason, result.status_code) == (
        Outcome.PERMANENT,
        "MessageRejected",
        400,
    )


async def test_illegal_address_is_invalid_recipient(ses: FakeSes, make: Any) -> None:
    result = await make().send(_message(to="ada@"))
    assert (result.outcome, result.reason) == (Outcome.INVALID_RECIPIENT, "BadRequestException")


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (429, "TooManyRequestsException", Outcome.RATE_LIMITED),
        (400, "SendingPausedException", Outcome.PROVIDER_AUTH),
        (400, "AccountSuspendedException", Outcome.PROVIDER_AUTH),
        (403, "AccessDeniedException", Outcome.PROVIDER_AUTH),
        (404, "NotFoundException", Outcome.PERMANENT),
        (500, "InternalFailure", Outcome.RETRY),
        (503, "ServiceUnavailable", Outcome.RETRY),
    ],
)
async def test_errors_are_classified_and_never_retried_by_botocore(
    ses: FakeSes, make: Any, status: int, code: str, outcome: Outcome
) -> None:
    ses.script_error(status, code)

    result = await make().send(_message())

    assert (result.outcome, result.reason, result.status_code) == (outcome, code, status)
    assert len(ses.requests) == 1  # botocore's own retries are off


async def test_server_error_then_delivered(ses: FakeSes, make: Any) -> None:
    ses.script_error(503, "ServiceUnavailable")
    provider = make()
    outcomes = [(await provider.send(_message())).outcome for _ in range(2)]
    assert outcomes == [Outcome.RETRY, Outcome.DELIVERED]


async def test_timeout_retries(ses: FakeSes, make: Any) -> None:
    ses.hold()
    try:
        result = await make(timeout_s=0.2).send(_message())
    finally:
        ses.release()
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


async def test_connection_refused_retries(make: Any, closed_url: str) -> None:
    result = await make(endpoint=closed_url).send(_message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")
