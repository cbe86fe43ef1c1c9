"""A topic send's status: its result from the fan-out state and the per-status counts."""

from __future__ import annotations

import pytest

from api.topic_views import fanout_result
from shared.db.notifications.transactions import TransactionCounts, statuses_of
from shared.domain import Status


def _counts(**by_status: int) -> TransactionCounts:
    return TransactionCounts(
        by_status={Status(k): v for k, v in by_status.items()}, last_delivered_at=None
    )


@pytest.mark.parametrize(
    ("state", "counts", "result"),
    [
        ("RUNNING", _counts(DELIVERED=5), "SENT"),  # more may still come
        ("DONE", _counts(DELIVERED=5, QUEUED=1), "SENT"),
        ("DONE", _counts(DELIVERED=5, PROCESSING=1, RETRYING=1), "SENT"),
        ("DONE", _counts(DELIVERED=5), "DELIVERED"),
        ("DONE", _counts(OPTED_OUT=2), "OPTED_OUT"),
        ("DONE", _counts(DELIVERED=5, NO_CHANNEL=1), "FAILED"),  # mixed: the summary says which
        ("DONE", _counts(), "DELIVERED"),  # nobody to send to, nothing failed
    ],
)
def test_the_result_of_a_topic_send(state: str, counts: TransactionCounts, result: str) -> None:
    assert fanout_result({"state": state}, counts) == result


def test_counts_per_result_read_every_in_flight_status_as_sent() -> None:
    counts = _counts(DELIVERED=3, QUEUED=1, PROCESSING=2, FAILED=1)
    assert counts.by_result() == {"DELIVERED": 3, "SENT": 3, "FAILED": 1}
    assert counts.total == 7


def test_a_result_filter_names_its_statuses() -> None:
    assert set(statuses_of("SENT")) == {
        Status.SCHEDULED,
        Status.DELAYED,
        Status.QUEUED,
        Status.PROCESSING,
        Status.RETRYING,
    }
    assert statuses_of("DELIVERED") == [Status.DELIVERED]
