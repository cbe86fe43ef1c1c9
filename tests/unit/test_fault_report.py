"""The jepsen-style counts of the fault tests, and the table `scripts/faults` prints."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.faults.report import COLUMNS, render_table, tally


def test_every_column_counts_what_its_name_says() -> None:
    counts = tally(
        acknowledged=["a", "b", "c", "d"],
        unacknowledged=["e", "f"],
        deliveries=Counter({"a": 1, "b": 2, "d": 1, "e": 1, "zz": 1}),
    )
    assert counts.columns() == {
        "requests": 6,
        "acknowledged": 4,
        "delivered": 4,  # a, b, d and e (e was never acknowledged)
        "lost": 1,  # c
        "recovered": 1,  # e
        "unexpected": 1,  # zz: nobody asked for it
        "duplicated": 1,  # b
    }
    assert (counts.lost_keys, counts.duplicated_keys, counts.unexpected_keys) == (
        ["c"],
        ["b"],
        ["zz"],
    )


def test_a_key_cannot_be_both_acknowledged_and_not() -> None:
    with pytest.raises(ValueError, match="both"):
        tally(acknowledged=["a"], unacknowledged=["a"], deliveries=Counter())


def test_the_table_shows_a_dash_for_what_a_test_does_not_count() -> None:
    table = render_table(
        [
            {"fault": "node killed", "columns": dict.fromkeys(COLUMNS, 0), "outcome": "passed"},
            {"fault": "429", "columns": {"requests": 1}, "outcome": "skipped"},
        ]
    )
    header, rule, first, second = table.splitlines()
    assert header == (
        "| fault | requests | acknowledged | delivered | lost | recovered | unexpected "
        "| duplicated | result |"
    )
    assert rule.count("|") == header.count("|")
    assert first == "| node killed | 0 | 0 | 0 | 0 | 0 | 0 | 0 | passed |"
    dashes = " | ".join(["\N{EN DASH}"] * 6)
    assert second == f"| 429 | 1 | {dashes} | skipped |"
