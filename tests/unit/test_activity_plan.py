"""How the activity feed drives each filter (the index it fits) and sizes its time windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.db.notifications.activity import (
    IN_FLIGHT,
    ActivityFilter,
    _Hint,
    _next_span,
    _ranks,
    driver_for,
    statuses_for_results,
)
from shared.domain import Channel

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)
LO = NOW - timedelta(seconds=5)


def test_results_map_to_stored_statuses() -> None:
    assert statuses_for_results(["SENT"]) == IN_FLIGHT
    assert set(IN_FLIGHT) == {"SCHEDULED", "DELAYED", "QUEUED", "PROCESSING", "RETRYING"}
    assert statuses_for_results(["FAILED", "DELIVERED", "FAILED"]) == ("FAILED", "DELIVERED")


def test_each_filter_is_driven_by_the_index_it_fits() -> None:
    window = {"$gte": LO, "$lt": NOW}
    txn = driver_for("t", ActivityFilter(transaction_id="x", user_id="u", channels=("push",)))
    assert txn.queries(LO, NOW) == [{"tenant_id": "t", "transaction_id": "x"}]
    user = driver_for("t", ActivityFilter(user_id="u", statuses=("FAILED",)))
    assert user.queries(LO, NOW) == [{"tenant_id": "t", "recipient": "u", "created_at": window}]
    statuses = driver_for("t", ActivityFilter(statuses=("FAILED", "CANCELLED"), channels=("sms",)))
    assert statuses.queries(LO, None) == [
        {"tenant_id": "t", "status": "FAILED", "created_at": {"$gte": LO}},
        {"tenant_id": "t", "status": "CANCELLED", "created_at": {"$gte": LO}},
    ]
    by_channel = driver_for("t", ActivityFilter(channels=("push",), categories=("PRODUCT",)))
    assert by_channel.queries(LO, NOW) == [
        {"tenant_id": "t", "channel": "push", "created_at": window}
    ]
    plain = driver_for("t", ActivityFilter())
    assert [q["channel"] for q in plain.queries(LO, NOW)] == [c.value for c in Channel]


def test_the_other_filters_are_applied_to_what_the_driver_returns() -> None:
    doc = {
        "channel": "push",
        "category": "PRODUCT",
        "status": "DELIVERED",
        "recipient": "u1",
        "transaction_id": "x",
        "created_at": NOW,
    }
    assert ActivityFilter(channels=("push", "sms"), categories=("PRODUCT",)).admits(doc)
    assert not ActivityFilter(channels=("sms",)).admits(doc)
    assert not ActivityFilter(statuses=("FAILED",)).admits(doc)
    assert ActivityFilter(start=NOW, end=NOW).admits(doc)
    assert not ActivityFilter(end=NOW - timedelta(milliseconds=1)).admits(doc)
    assert not ActivityFilter(user_id="u2").admits(doc)


def _docs(count: int, every_s: float) -> list[dict[str, datetime]]:
    return [{"created_at": NOW - timedelta(seconds=i * every_s)} for i in range(count)]


def test_windows_grow_across_gaps_and_follow_the_density_of_the_matches() -> None:
    # An empty window: jump ahead; too few matches to tell a density: twice as far.
    assert _next_span(10, found=_docs(5, 1), need=50, new=0) == 80
    assert _next_span(10, found=_docs(5, 1), need=50, new=1) == 20
    # 10 matches a second apart, 40 more needed: 50 s, between 1/8 and 8x the last window.
    assert _next_span(100, found=_docs(10, 1), need=50, new=5) == 50
    assert _next_span(5, found=_docs(10, 1), need=50, new=5) == 40
    assert _next_span(1000, found=_docs(10, 1), need=50, new=5) == 125
    # The density is the matches' own: a dense burst after a long gap shrinks the windows.
    assert _next_span(8, found=_docs(40, 0.1), need=50, new=40) == 1.25


def test_a_hint_keeps_deeper_ranks_and_finds_a_boundary() -> None:
    first = _Hint(2.0, _ranks(_docs(300, 1)))
    assert [r for r, _ in first.ranks] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert first.boundary(51) == NOW - timedelta(seconds=63)
    assert first.boundary(301) is None
    later = _Hint(3.0, _ranks(_docs(64, 1))).after(first)
    assert [r for r, _ in later.ranks] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert later.density == 3.0
    assert later.boundary(251) == NOW - timedelta(seconds=255)
