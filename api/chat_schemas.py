"""Request bodies for chat addresses: `subscriberData.chat` and the chat-channel user RPCs."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,20}$")


def _webhook(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or not parts.path.strip("/"):
        raise ValueError("must be a webhook URL such as https://hooks.slack.com/services/…")
    return value


def _channel_id(value: str) -> str:
    if not _CHANNEL_ID.match(value):
        raise ValueError("must be a Slack channel id such as C0123456789")
    return value


WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_webhook)
]
ChannelId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_channel_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ChatAddresses(_Strict):
    """`subscriberData.chat`: where CHAT notifications go; null removes an address."""

    model_config = ConfigDict(strict=True, extra="forbid")

    slackWebhookUrl: WebhookUrl | None = None
    slackChannelId: ChannelId | None = None
    discordWebhookUrl: WebhookUrl | None = None


# API name -> stored field under `chat` (see shared.db.subscribers.CHAT_FIELDS).
CHAT_API_FIELDS = {
    "slackWebhookUrl": "slack_webhook_url",
    "slackChannelId": "slack_channel_id",
    "discordWebhookUrl": "discord_webhook_url",
}


class RegisterChatChannelRequest(_Strict):
    """`register-chat-channel`: a Slack webhook or channel id, or a Discord webhook."""

    provider: Literal["SLACK", "DISCORD"]
    webhookUrl: WebhookUrl | None = None
    channelId: ChannelId | None = None

    @model_validator(mode="after")
    def _one_address(self) -> Self:
        if self.provider == "DISCORD" and self.channelId is not None:
            raise ValueError("channelId is for SLACK; a DISCORD channel is reached by webhookUrl")
        if (self.webhookUrl is None) == (self.channelId is None):
            raise ValueError("exactly one of webhookUrl and channelId is required")
        return self

    @property
    def field(self) -> str:
        """The stored field this address goes in."""
        if self.provider == "DISCORD":
            return "discord_webhook_url"
        return "slack_webhook_url" if self.webhookUrl is not None else "slack_channel_id"

    @property
    def address(self) -> str:
        """The address itself."""
        value = self.webhookUrl if self.webhookUrl is not None else self.channelId
        assert value is not None
        return value


class UnregisterChatChannelRequest(_Strict):
    """`unregister-chat-channel`: the provider's addresses, or only the one given."""

    provider: Literal["SLACK", "DISCORD"]
    webhookUrl: WebhookUrl | None = None
    channelId: ChannelId | None = None

    @model_validator(mode="after")
    def _discord_has_no_channel_id(self) -> Self:
        if self.provider == "DISCORD" and self.channelId is not None:
            raise ValueError("channelId is for SLACK; a DISCORD channel is reached by webhookUrl")
        return self

    def fields(self) -> list[tuple[str, str | None]]:
        """(stored field, address it must still hold or None for any) pairs to unset."""
        if self.provider == "DISCORD":
            return [("discord_webhook_url", self.webhookUrl)]
        if self.webhookUrl is not None or self.channelId is not None:
            pairs: list[tuple[str, str | None]] = []
            if self.webhookUrl is not None:
                pairs.append(("slack_webhook_url", self.webhookUrl))
            if self.channelId is not None:
                pairs.append(("slack_channel_id", self.channelId))
            return pairs
        return [("slack_webhook_url", None), ("slack_channel_id", None)]
