"""Preference switches as stored on the subscriber: the seed's view, the rule, the paths."""

from __future__ import annotations

from typing import Any

from shared.domain import Channel
from shared.preferences import opted_out_by, preferences_view, switch_path
from shared.workflow_runs import explicitly_enabled

ALL_ON = {"TRANSACTIONAL": True, "PRODUCT": True, "PROMOTIONAL": True}


def test_nothing_said_is_every_channel_and_category_enabled() -> None:
    subscribers: list[dict[str, Any] | None] = [
        None,
        {},
        {"preferences": {}},
        {"preferences": "junk"},
    ]
    for subscriber in subscribers:
        view = preferences_view(subscriber)
        assert [e["channel"] for e in view] == ["PUSH", "IN_APP", "EMAIL", "SMS", "CHAT"]
        assert all(e["channelEnabled"] and e["categories"] == ALL_ON for e in view)


def test_the_view_shows_what_the_user_switched() -> None:
    stored = {
        "preferences": {
            "push": {"categories": {"PROMOTIONAL": False}},
            "sms": {"enabled": False},
        }
    }
    view = {e["channel"]: e for e in preferences_view(stored)}
    assert view["PUSH"] == {
        "channel": "PUSH",
        "channelEnabled": True,
        "categories": {"TRANSACTIONAL": True, "PRODUCT": True, "PROMOTIONAL": False},
    }
    assert view["SMS"]["channelEnabled"] is False
    assert view["SMS"]["categories"] == ALL_ON  # the channel switch does not rewrite categories
    assert view["EMAIL"]["channelEnabled"] is True


def test_the_rule_names_what_stops_a_send() -> None:
    stored = {"preferences": {"sms": {"enabled": False, "categories": {"PRODUCT": False}}}}
    assert opted_out_by(stored, Channel.SMS, "PRODUCT") == "SMS is turned off by the user"
    assert opted_out_by(stored, Channel.SMS, "SYSTEM") is None
    assert opted_out_by(stored, Channel.EMAIL, "PRODUCT") is None
    on = {"preferences": {"sms": {"enabled": True, "categories": {"PRODUCT": False}}}}
    assert opted_out_by(on, Channel.SMS, "PRODUCT") == "PRODUCT on SMS is turned off by the user"


def test_switch_paths_are_the_format_workflow_defaults_read() -> None:
    assert switch_path(Channel.IN_APP, None) == "preferences.in_app.enabled"
    assert switch_path(Channel.PUSH, "PROMOTIONAL") == "preferences.push.categories.PROMOTIONAL"
    # What `update-preferences {channel: PUSH, enabled: true}` stores is an explicit choice.
    assert explicitly_enabled({"preferences": {"push": {"enabled": True}}}, Channel.PUSH)
    category_only = {"preferences": {"push": {"categories": {"PRODUCT": True}}}}
    assert not explicitly_enabled(category_only, Channel.PUSH)
