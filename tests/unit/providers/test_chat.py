"""SlackProvider and DiscordProvider against their fakes: webhooks, chat.postMessage, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.domain import Channel
from shared.providers.base import OutboundMessage, Outcome, Provider, ProviderConfig
from shared.providers.registry import build_adapter
from shared.providers.spec import AdapterResources
from shared.providers.webhooks import webhook_url
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import DEFAULT_BOT_TOKEN, FakeSlack


def _message(to: str, **overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "notification_id": "ntf_chat1",
        "tenant_id": "tnt_1",
        "channel": Channel.CHAT,
        "to": to,
        "title": "Deploy",
        "body": "v2 is live",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def _adapter(
    http: httpx.AsyncClient,
    provider_type: str,
    credentials: dict[str, Any],
    *,
    endpoint: str | None = None,
    timeout_s: float = 2.0,
) -> Provider:
    config = ProviderConfig(
        tenant_id="tnt_1", provider_type=provider_type, credentials=credentials, endpoint=endpoint
    )
    return build_adapter(config=config, resources=AdapterResources(http=http, timeout_s=timeout_s))


def test_endpoint_takes_the_place_of_a_webhooks_host() -> None:
    hook = "https://hooks.slack.com/services/T1/B2/xyz?a=1"
    assert webhook_url(hook, endpoint=None) == hook
    assert webhook_url(hook, endpoint="http://127.0.0.1:9000/") == (
        "http://127.0.0.1:9000/services/T1/B2/xyz?a=1"
    )
    assert webhook_url(hook, endpoint="http://proxy:8080/slack") == (
        "http://proxy:8080/slack/services/T1/B2/xyz?a=1"
    )


# --- Slack ---------------------------------------------------------------------------------


async def test_slack_webhook_delivered(slack: FakeSlack, http: httpx.AsyncClient) -> None:
    hook = slack.webhook_url()
    result = await _adapter(http, "SLACK", {}).send(_message(hook, deep_link="app://x"))
    assert (result.outcome, result.status_code) == (Outcome.DELIVERED, 200)
    assert slack.posts == [
        {"text": "*Deploy*\nv2 is live\napp://x", "_to": "/services/T0FAKE/B0FAKE/hook"}
    ]


async def test_slack_webhook_through_endpoint(slack: FakeSlack, http: httpx.AsyncClient) -> None:
    adapter = _adapter(http, "SLACK", {}, endpoint=slack.url)
    result = await adapter.send(_message("https://hooks.slack.com/services/T0FAKE/B0FAKE/real"))
    assert result.outcome is Outcome.DELIVERED
    assert slack.posts[0]["_to"] == "/services/T0FAKE/B0FAKE/real"


@pytest.mark.parametrize(
    ("status", "text", "outcome"),
    [
        (404, "no_service", Outcome.INVALID_RECIPIENT),
        (403, "invalid_token", Outcome.INVALID_RECIPIENT),
        (410, "channel_is_archived", Outcome.INVALID_RECIPIENT),
    ],
)
async def test_slack_dead_webhooks(
    slack: FakeSlack, http: httpx.AsyncClient, status: int, text: str, outcome: Outcome
) -> None:
    hook = slack.webhook_url("gone")
    slack.kill_webhook(hook, status, text)
    result = await _adapter(http, "SLACK", {}).send(_message(hook))
    assert (result.outcome, result.reason, result.status_code) == (outcome, text, status)


async def test_slack_webhook_bad_payload_rate_limit_and_server_error(
    slack: FakeSlack, http: httpx.AsyncClient
) -> None:
    adapter = _adapter(http, "SLACK", {})
    hook = slack.webhook_url()
    slack.script_webhook(400, "invalid_payload")
    slack.script_webhook(429, "rate_limited", headers={"Retry-After": "30"})
    slack.script_webhook(500, "")
    results = [await adapter.send(_message(hook)) for _ in range(4)]
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.PERMANENT, "invalid_payload"),
        (Outcome.RATE_LIMITED, "rate_limited"),
        (Outcome.RETRY, "HTTP_500"),
        (Outcome.DELIVERED, None),
    ]
    assert results[1].retry_after_s == 30.0


async def test_slack_channel_with_bot_token(slack: FakeSlack, http: httpx.AsyncClient) -> None:
    adapter = _adapter(http, "SLACK", {"botToken": DEFAULT_BOT_TOKEN}, endpoint=slack.url)
    result = await adapter.send(_message("C0123456789"))
    assert result.outcome is Outcome.DELIVERED
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("C0123456789:")
    [request] = slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {DEFAULT_BOT_TOKEN}"
    assert request.json() == {"channel": "C0123456789", "text": "*Deploy*\nv2 is live"}


@pytest.mark.parametrize(
    ("token", "channel", "outcome", "reason"),
    [
        ("xoxb-revoked", "C0123456789", Outcome.PROVIDER_AUTH, "invalid_auth"),
        (DEFAULT_BOT_TOKEN, "C0NOTHERE00", Outcome.INVALID_RECIPIENT, "channel_not_found"),
    ],
)
async def test_slack_api_errors_arrive_as_http_200(
    slack: FakeSlack,
    http: httpx.AsyncClient,
    token: str,
    channel: str,
    outcome: Outcome,
    reason: str,
) -> None:
    adapter = _adapter(http, "SLACK", {"botToken": token}, endpoint=slack.url)
    result = await adapter.send(_message(channel))
    assert (result.outcome, result.reason, result.status_code) == (outcome, reason, 200)


async def test_slack_api_rate_limit_and_not_in_channel(
    slack: FakeSlack, http: httpx.AsyncClient
) -> None:
    adapter = _adapter(http, "SLACK", {"botToken": DEFAULT_BOT_TOKEN}, endpoint=slack.url)
    slack.script_api(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "5"})
    slack.script_api(200, {"ok": False, "error": "not_in_channel"})
    slack.script_api(503, "")
    results = [await adapter.send(_message("C0123456789")) for _ in range(4)]
    assert [r.outcome for r in results] == [
        Outcome.RATE_LIMITED,
        Outcome.PERMANENT,
        Outcome.RETRY,
        Outcome.DELIVERED,
    ]
    assert results[0].retry_after_s == 5.0


async def test_slack_channel_without_bot_token_is_permanent(
    slack: FakeSlack, http: httpx.AsyncClient
) -> None:
    result = await _adapter(http, "SLACK", {}, endpoint=slack.url).send(_message("C0123456789"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "no_bot_token")
    assert slack.requests == []


async def test_slack_timeout_and_refused(
    slack: FakeSlack, http: httpx.AsyncClient, closed_url: str
) -> None:
    slack.hold()
    result = await _adapter(http, "SLACK", {}, timeout_s=0.05).send(_message(slack.webhook_url()))
    slack.release()
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")
    result = await _adapter(http, "SLACK", {}).send(_message(closed_url + "/services/a/b/c"))
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


# --- Discord -------------------------------------------------------------------------------


async def test_discord_waits_for_the_message_id(
    discord: FakeDiscord, http: httpx.AsyncClient
) -> None:
    result = await _adapter(http, "DISCORD", {}).send(_message(discord.webhook_url()))
    assert (result.outcome, result.status_code) == (Outcome.DELIVERED, 200)
    [request] = discord.requests
    assert request.query == "wait=true"
    assert result.provider_message_id == "1200000000000000000"
    assert request.json() == {
        "content": "**Deploy**\nv2 is live",
        "allowed_mentions": {"parse": []},
    }


async def test_discord_through_endpoint_keeps_its_query(
    discord: FakeDiscord, http: httpx.AsyncClient
) -> None:
    adapter = _adapter(http, "DISCORD", {}, endpoint=discord.url)
    hook = "https://discord.com/api/webhooks/42/tok?thread_id=7&wait=false"
    assert (await adapter.send(_message(hook))).outcome is Outcome.DELIVERED
    [request] = discord.requests
    assert (request.path, request.query) == ("/api/webhooks/42/tok", "thread_id=7&wait=true")


@pytest.mark.parametrize(
    ("kill", "outcome", "reason", "status"),
    [
        ("deleted_webhooks", Outcome.INVALID_RECIPIENT, "10015", 404),
        ("revoked_tokens", Outcome.INVALID_RECIPIENT, "50027", 401),
    ],
)
async def test_discord_dead_webhooks(
    discord: FakeDiscord,
    http: httpx.AsyncClient,
    kill: str,
    outcome: Outcome,
    reason: str,
    status: int,
) -> None:
    getattr(discord, kill).add("99" if kill == "deleted_webhooks" else "dead")
    hook = discord.webhook_url("99", "dead")
    result = await _adapter(http, "DISCORD", {}).send(_message(hook))
    assert (result.outcome, result.reason, result.status_code) == (outcome, reason, status)


async def test_discord_rate_limit_reads_the_bodys_retry_after(
    discord: FakeDiscord, http: httpx.AsyncClient
) -> None:
    discord.script_rate_limit(retry_after=1.25)
    result = await _adapter(http, "DISCORD", {}).send(_message(discord.webhook_url()))
    assert (result.outcome, result.retry_after_s) == (Outcome.RATE_LIMITED, 1.25)


async def test_discord_empty_message_server_error_then_delivered(
    discord: FakeDiscord, http: httpx.AsyncClient
) -> None:
    adapter = _adapter(http, "DISCORD", {})
    hook = discord.webhook_url()
    empty = await adapter.send(_message(hook, title=None, body=""))
    assert (empty.outcome, empty.reason) == (Outcome.PERMANENT, "50006")
    discord.script(502, body="<html>bad gateway</html>")
    outcomes = [(await adapter.send(_message(hook))).outcome for _ in range(2)]
    assert outcomes == [Outcome.RETRY, Outcome.DELIVERED]


async def test_discord_long_text_is_cut_and_timeout_retries(
    discord: FakeDiscord, http: httpx.AsyncClient
) -> None:
    hook = discord.webhook_url()
    result = await _adapter(http, "DISCORD", {}).send(_message(hook, body="y" * 5000))
    assert result.outcome is Outcome.DELIVERED
    assert len(discord.messages[0]["content"]) == 2000
    discord.hold()
    result = await _adapter(http, "DISCORD", {}, timeout_s=0.05).send(_message(hook))
    discord.release()
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")
