"""CHAT through Slack (webhook and bot token) and Discord end to end, and the chat-channel RPCs."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import DEFAULT_BOT_TOKEN, FakeSlack
from tests.integration.helpers import configure, ok_rpc, rpc, send_and_wait
from tests.support import Tenant


async def _chat(tenant: Tenant, user: str) -> dict[str, Any]:
    answer = await ok_rpc(tenant, "manage/get-subscriber", {"userId": user})
    chat: dict[str, Any] = answer["subscriber"]["chat"]
    return chat


async def _chat_count(tenant: Tenant, user: str) -> int:
    answer = await ok_rpc(tenant, "get-registered-channels", {}, headers=tenant.user_headers(user))
    [chat] = [c for c in answer["channels"] if c["channel"] == "CHAT"]
    count: int = chat["credentialCount"]
    return count


async def test_slack_and_discord_webhooks_set_on_the_subscriber(
    tenant: Tenant, slack: FakeSlack, discord: FakeDiscord
) -> None:
    await configure(tenant, "SLACK", slack.url, {})
    await configure(tenant, "DISCORD", discord.url, {})
    slack_hook = "https://hooks.slack.com/services/T0FAKE/B0FAKE/secret1234"
    discord_hook = "https://discord.com/api/webhooks/112233/token5678"
    created = await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {
            "userId": "u1",
            "subscriberData": {
                "chat": {"slackWebhookUrl": slack_hook, "discordWebhookUrl": discord_hook}
            },
        },
    )
    # Webhook URLs carry their token: never echoed whole.
    assert created["subscriber"]["chat"] == {
        "slackWebhookUrl": "https://hooks.slack.com/…1234",
        "slackChannelId": None,
        "discordWebhookUrl": "https://discord.com/…5678",
    }
    assert await _chat_count(tenant, "u1") == 2

    status = await send_and_wait(tenant, "u1", "CHAT")

    assert status["result"] == "DELIVERED"
    # `endpoint` took the place of the real hosts: both went to the fakes.
    assert [p["_to"] for p in slack.posts] == ["/services/T0FAKE/B0FAKE/secret1234"]
    assert slack.posts[0]["text"] == "*Hello*\nA notification"
    [message] = discord.messages
    assert (message["_webhook"], message["content"]) == ("112233", "**Hello**\nA notification")
    assert sorted(a["provider"] for a in status["attempts"]) == ["DISCORD", "SLACK"]


async def test_slack_channel_registered_by_the_user_with_a_bot_token(
    tenant: Tenant, slack: FakeSlack
) -> None:
    await configure(tenant, "SLACK", slack.url, {"botToken": DEFAULT_BOT_TOKEN})
    me = tenant.user_headers("u2")
    registered = await ok_rpc(
        tenant,
        "register-chat-channel",
        {"provider": "SLACK", "channelId": "C0123456789"},
        headers=me,
    )
    assert registered["chat"]["slackChannelId"] == "C0123456789"

    status = await send_and_wait(tenant, "u2", "CHAT")

    assert status["result"] == "DELIVERED"
    assert status["providerMessageId"].startswith("C0123456789:")
    assert slack.posts[0]["channel"] == "C0123456789"
    removed = await ok_rpc(tenant, "unregister-chat-channel", {"provider": "SLACK"}, headers=me)
    assert removed == {"removed": True}
    assert await _chat_count(tenant, "u2") == 0
    again = await ok_rpc(tenant, "unregister-chat-channel", {"provider": "SLACK"}, headers=me)
    assert again == {"removed": False}


async def test_deleted_discord_webhook_is_invalid_credential_and_removed(
    tenant: Tenant, discord: FakeDiscord
) -> None:
    await configure(tenant, "DISCORD", discord.url, {})
    me = tenant.user_headers("u3")
    await ok_rpc(
        tenant,
        "register-chat-channel",
        {"provider": "DISCORD", "webhookUrl": discord.webhook_url("404404")},
        headers=me,
    )
    discord.deleted_webhooks.add("404404")

    status = await send_and_wait(tenant, "u3", "CHAT")

    assert (status["result"], status["failureReason"]) == ("INVALID_CREDENTIAL", "10015")
    assert (await _chat(tenant, "u3"))["discordWebhookUrl"] is None
    assert await _chat_count(tenant, "u3") == 0


async def test_discord_rate_limit_waits_retry_after_then_delivers(
    tenant: Tenant, discord: FakeDiscord
) -> None:
    await configure(tenant, "DISCORD", discord.url, {})
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u4", "subscriberData": {"chat": {"discordWebhookUrl": discord.webhook_url()}}},
    )
    discord.script_rate_limit(retry_after=1.0)

    status = await send_and_wait(tenant, "u4", "CHAT")

    assert status["result"] == "DELIVERED"
    assert [a["outcome"] for a in status["attempts"]] == ["RATE_LIMITED", "DELIVERED"]
    first, second = discord.requests
    assert second.received_at - first.received_at >= 1.0


async def test_chat_channel_rpcs_validate(tenant: Tenant) -> None:
    me = tenant.user_headers("u5")
    cases = [
        ({"provider": "SLACK"}, ["exactly one of webhookUrl and channelId is required"]),
        (
            {"provider": "DISCORD", "channelId": "C0123456789"},
            ["channelId is for SLACK; a DISCORD channel is reached by webhookUrl"],
        ),
        (
            {"provider": "SLACK", "webhookUrl": "ftp://x"},
            ["webhookUrl must be a webhook URL such as https://hooks.slack.com/services/…"],
        ),
        (
            {"provider": "TEAMS", "channelId": "general"},
            [
                "provider must be one of the following values: SLACK, DISCORD",
                "channelId must be a Slack channel id such as C0123456789",
            ],
        ),
    ]
    for body, errors in cases:
        response = await rpc(tenant, "register-chat-channel", body, headers=me)
        assert response.status_code == 400, body
        assert response.json()["error"] == errors
    bad = await rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u6", "subscriberData": {"chat": {"slackWebhookUrl": "nope", "teams": "x"}}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == [
        "subscriberData.chat.slackWebhookUrl must be a webhook URL such as "
        "https://hooks.slack.com/services/…",
        "subscriberData.chat.teams is not an allowed field",
    ]
