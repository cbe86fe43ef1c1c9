"""What the chat adapters share: the text of a message, and where a webhook URL is posted.

A webhook URL carries its own credentials, so it is stored on the subscriber and used as
given, except that a configured `endpoint` (a proxy, a regional gateway, a local fake) takes the
place of its scheme and host: `https://hooks.slack.com/services/T/B/X` with endpoint
`http://127.0.0.1:9000` is posted to `http://127.0.0.1:9000/services/T/B/X`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from shared.providers.base import OutboundMessage


def is_webhook(address: str) -> bool:
    """True for a webhook URL; a Slack channel id is not one."""
    return address.startswith(("https://", "http://"))


def webhook_url(address: str, *, endpoint: str | None) -> str:
    """The URL to post to: the webhook's own, or its path and query on `endpoint`."""
    if not endpoint:
        return address
    parts = urlsplit(address)
    base = urlsplit(endpoint.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))


def chat_text(message: OutboundMessage, *, bold: str, limit: int) -> str:
    """Title (bold in the chat's markup) and body, plus the deep link, cut to `limit`."""
    title = message.title or message.subject
    text = f"{bold}{title}{bold}\n{message.body}" if title else message.body
    if message.deep_link:
        text = f"{text}\n{message.deep_link}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
