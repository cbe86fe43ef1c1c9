"""A subscriber's channel and category switches: how they are stored, shown and enforced. Pure.

Stored on the subscriber document, only where the user said something (so "nothing said"
stays distinguishable from "enabled", which workflow channel defaults rely on,
`shared.workflow_runs.explicitly_enabled`):

    preferences: {<channel value>: {enabled: bool, categories: {<CATEGORY>: bool}}}

e.g. `preferences.push.categories.PROMOTIONAL = false`. Anything absent is enabled. `SYSTEM`
cannot be switched (the seed: SYSTEM bypasses preferences), and a critical record bypasses
them too. The delivery worker reads the document for every notification anyway, so enforcing
costs no extra database command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain import Category, Channel

# The categories a user can switch, in the seed's order; SYSTEM is never switched off.
SWITCHABLE = (Category.TRANSACTIONAL, Category.PRODUCT, Category.PROMOTIONAL)
# The seed's channel order (PUSH first in its example).
CHANNEL_ORDER = (Channel.PUSH, Channel.IN_APP, Channel.EMAIL, Channel.SMS, Channel.CHAT)


def _stored(subscriber: Mapping[str, Any] | None, channel: Channel) -> Mapping[str, Any]:
    prefs = (subscriber or {}).get("preferences")
    entry = prefs.get(channel.value) if isinstance(prefs, Mapping) else None
    return entry if isinstance(entry, Mapping) else {}


def channel_enabled(subscriber: Mapping[str, Any] | None, channel: Channel) -> bool:
    """False only if the user turned the whole channel off."""
    return _stored(subscriber, channel).get("enabled") is not False


def category_enabled(subscriber: Mapping[str, Any] | None, channel: Channel, category: str) -> bool:
    """False only if the user turned this category off on this channel."""
    switches = _stored(subscriber, channel).get("categories")
    return not (isinstance(switches, Mapping) and switches.get(category) is False)


def opted_out_by(
    subscriber: Mapping[str, Any] | None, channel: Channel, category: str
) -> str | None:
    """Why the user's preferences stop this (channel, category), or None if they allow it.

    SYSTEM always goes through; callers handle critical records before asking.
    """
    if category == Category.SYSTEM.value:
        return None
    if not channel_enabled(subscriber, channel):
        return f"{channel.api_name} is turned off by the user"
    if not category_enabled(subscriber, channel, category):
        return f"{category} on {channel.api_name} is turned off by the user"
    return None


def preferences_view(subscriber: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Seed 000's `preferences`: every channel, its switch and its three categories."""
    return [
        {
            "channel": channel.api_name,
            "channelEnabled": channel_enabled(subscriber, channel),
            "categories": {
                c.value: category_enabled(subscriber, channel, c.value) for c in SWITCHABLE
            },
        }
        for channel in CHANNEL_ORDER
    ]


def switch_path(channel: Channel, category: str | None) -> str:
    """The document field one `update-preferences` sets (dotted, for `$set`)."""
    base = f"preferences.{channel.value}"
    return f"{base}.categories.{category}" if category is not None else f"{base}.enabled"
