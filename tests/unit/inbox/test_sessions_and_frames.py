"""Session tokens, routing keys, public URLs and the socket's frames, without a server."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request

from api.inbox.session import SessionRejected, SessionTokens, looks_like_session_token
from api.inbox.socket import frame_for, needs_reset
from api.routes.inbox import public_urls
from shared.db.inbox_streams import Stream
from shared.messaging.topology import realtime_routing_key
from shared.settings import Settings

TOKENS = SessionTokens(secret_key="unit-test-secret-key-0123456789", ttl_s=60)


def test_a_token_round_trips_and_expires() -> None:
    token, granted = TOKENS.issue(tenant_id="t1", subscriber_id="u1", environment="production")
    assert looks_like_session_token(token)
    assert TOKENS.verify(token) == granted
    assert granted.expires_at - time.time() == pytest.approx(60, abs=2)
    old, _ = TOKENS.issue(
        tenant_id="t1", subscriber_id="u1", environment="d", now=time.time() - 120
    )
    with pytest.raises(SessionRejected) as rejected:
        TOKENS.verify(old)
    assert rejected.value.expired
    assert rejected.value.reason == "session token expired"


def test_another_secret_or_a_changed_token_is_invalid() -> None:
    token, _ = TOKENS.issue(tenant_id="t1", subscriber_id="u1", environment="d")
    other = SessionTokens(secret_key="another-secret-key-0123456789", ttl_s=60)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "a.b.c", "nonsense"):
        with pytest.raises(SessionRejected, match="invalid session token"):
            TOKENS.verify(bad)
    with pytest.raises(SessionRejected, match="invalid session token"):
        other.verify(token)


def test_api_keys_never_look_like_session_tokens() -> None:
    assert not looks_like_session_token("nk_live_abc.def")
    assert not looks_like_session_token("compose-check")


def test_routing_keys_are_safe_topic_words() -> None:
    assert realtime_routing_key(tenant_id="acme", subscriber_id="user_1") == "acme.user_1"
    tricky = realtime_routing_key(tenant_id="acme", subscriber_id="a.b#*")
    word = tricky.split(".", 1)[1]
    assert word.startswith("~")
    assert not set(word) & {".", "#", "*"}
    assert tricky != realtime_routing_key(tenant_id="acme", subscriber_id="a.b#")
    long_id = "x" * 500
    assert len(realtime_routing_key(tenant_id=long_id, subscriber_id=long_id)) < 255


def _request(url: str) -> Request:
    scheme, rest = url.split("://")
    host, port = rest.split(":")
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": (host, int(port)),
            "path": "/",
            "root_path": "",
            "headers": [(b"host", rest.encode())],
            "query_string": b"",
        }
    )


def test_public_urls_come_from_settings_else_the_request() -> None:
    request = _request("http://10.0.0.5:8000")
    assert public_urls(Settings(), request) == (
        "http://10.0.0.5:8000",
        "ws://10.0.0.5:8000/api/v1/notifications/inbox/ws",
    )
    behind_proxy = Settings(public_url="https://notify.example.com/n/")
    assert public_urls(behind_proxy, request) == (
        "https://notify.example.com/n",
        "wss://notify.example.com/n/api/v1/notifications/inbox/ws",
    )
    own_ws = Settings(public_url="https://a.example.com", public_ws_url="wss://ws.example.com/x")
    assert public_urls(own_ws, request) == ("https://a.example.com", "wss://ws.example.com/x")


def test_frames_show_items_as_they_are_now() -> None:
    live = {"_id": "m1", "title": "t", "body": "b", "seen": True, "read": False}
    gone = {"_id": "m2", "deleted_at": 1, "seen": True, "read": True}
    items = {"m1": live, "m2": gone}
    created = frame_for(5, {"k": "created", "m": "m1"}, items)
    assert (created["type"], created["seq"], created["message"]["status"]) == (
        "message.created",
        5,
        "SEEN",
    )
    assert frame_for(6, {"k": "updated", "m": "m1"}, items)["type"] == "message.updated"
    # An item deleted since (or never readable) is a deletion under the same seq.
    for kind, message_id in (("created", "m2"), ("updated", "m3"), ("deleted", "m1")):
        assert frame_for(7, {"k": kind, "m": message_id}, items) == {
            "type": "message.deleted",
            "seq": 7,
            "messageId": message_id,
        }
    bulk = frame_for(8, {"k": "marked", "st": "READ", "f": ["a"], "n": 2}, items)
    assert bulk == {
        "type": "message.updated",
        "seq": 8,
        "bulk": {"status": "READ", "feedIds": ["a"], "count": 2},
    }


def test_a_reset_only_for_a_cursor_outside_the_stream() -> None:
    stream = Stream(head=10, oldest=6)  # events 6..10 kept
    assert not needs_reset(stream, 5)  # resumes at 6: nothing missing
    assert not needs_reset(stream, 10)
    assert needs_reset(stream, 4)  # 5 is gone
    assert needs_reset(stream, 11)  # ahead of the stream: another deployment's cursor
    assert not needs_reset(Stream(head=0, oldest=1), 0)
