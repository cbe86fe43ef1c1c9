"""Entity tags: a 304 for a tag the client holds, the body for anything else."""

from __future__ import annotations

from api.etags import etag_of, json_with_etag, none_match


def test_a_tag_names_exactly_its_bytes() -> None:
    assert etag_of(b"a") == etag_of(b"a") != etag_of(b"b")
    assert etag_of(b"a").startswith('"')
    assert etag_of(b"a").endswith('"')


def test_if_none_match_uses_weak_comparison_lists_and_star() -> None:
    tag = etag_of(b"x")
    assert none_match(None, tag)
    assert none_match('"other"', tag)
    assert not none_match(tag, tag)
    assert not none_match(f"W/{tag}", tag)
    assert not none_match(f'"a", {tag}', tag)
    assert not none_match("*", tag)


def test_the_response_is_the_body_or_a_bodiless_304_with_the_same_tag() -> None:
    full = json_with_etag({"a": 1}, if_none_match=None)
    assert (full.status_code, full.body) == (200, b'{"a":1}')
    tag = full.headers["etag"]
    assert full.headers["cache-control"] == "private, no-cache"
    same = json_with_etag({"a": 1}, if_none_match=tag)
    assert (same.status_code, same.body, same.headers["etag"]) == (304, b"", tag)
    changed = json_with_etag({"a": 2}, if_none_match=tag)
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
