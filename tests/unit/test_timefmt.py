"""The one time format: what the API, the dead-letter views and the DLQ headers all write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.messaging.dead_letters import DeadLetterInfo, dead_letter_headers
from shared.timefmt import iso_z


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 3, 18, 10, 0, tzinfo=UTC), "2026-03-18T10:00:00.000Z"),
        # Truncated to BSON's milliseconds, never rounded up into the next one.
        (datetime(2026, 3, 18, 10, 0, 2, 999_999, tzinfo=UTC), "2026-03-18T10:00:02.999Z"),
        # Another zone is converted, so every time on every surface reads in UTC.
        (
            datetime(2026, 3, 18, 12, 0, 0, 123_000, tzinfo=timezone(timedelta(hours=2))),
            "2026-03-18T10:00:00.123Z",
        ),
        # A naive value is UTC (what BSON stores), not the machine's local time.
        (datetime(2026, 3, 18, 10, 0), "2026-03-18T10:00:00.000Z"),
    ],
)
def test_iso_z_writes_utc_milliseconds_and_z(value: datetime, text: str) -> None:
    assert iso_z(value) == text


@pytest.mark.parametrize("value", [None, "2026-03-18T10:00:00Z", 0])
def test_iso_z_of_a_field_that_is_not_a_time_is_none(value: object) -> None:
    assert iso_z(value) is None


def test_the_failed_at_header_round_trips() -> None:
    failed_at = datetime(2026, 3, 18, 10, 0, 0, 123_456, tzinfo=UTC)
    headers = dead_letter_headers(
        reason="bounced",
        detail=None,
        attempts=1,
        original_queue="email.queue",
        failed_at=failed_at,
        tenant_id="t1",
        transaction_id=None,
        notification_id="ntf_1",
        final_status="FAILED",
        correlation_id=None,
    )
    assert headers["x-failed-at"] == "2026-03-18T10:00:00.123Z"
    parsed = DeadLetterInfo.from_headers(headers).failed_at
    assert parsed == failed_at.replace(microsecond=123_000)
