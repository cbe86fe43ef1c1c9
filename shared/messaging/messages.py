"""The message on a channel queue (DESIGN.md §4): small; the record is the source of truth."""

from __future__ import annotations

from typing import Any

MESSAGE_VERSION = 1


def deliver_message(
    *, notification_id: str, tenant_id: str, channel: str, attempt: int
) -> dict[str, Any]:
    """Body of a `deliver` message."""
    return {
        "v": MESSAGE_VERSION,
        "notification_id": notification_id,
        "tenant_id": tenant_id,
        "channel": channel,
        "attempt": attempt,
        "kind": "deliver",
    }


def digest_flush_message(*, tenant_id: str, digest_id: str) -> dict[str, Any]:
    """Body of a `digest_flush` message: close this digest and send it."""
    return {
        "v": MESSAGE_VERSION,
        "tenant_id": tenant_id,
        "digest_id": digest_id,
        "kind": "digest_flush",
    }


def fanout_message(*, tenant_id: str, fanout_id: str) -> dict[str, Any]:
    """Body of a `fanout` message: expand this stored fan-out (a topic send)."""
    return {
        "v": MESSAGE_VERSION,
        "tenant_id": tenant_id,
        "fanout_id": fanout_id,
        "kind": "fanout",
    }
