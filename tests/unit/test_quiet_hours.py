"""Quiet-hour windows with real zones (zoneinfo): across midnight, on chosen days, over DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.quiet_hours import QuietHours, parse_hhmm, window_end


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sub(quiet: dict[str, Any] | None, **profile: Any) -> dict[str, Any]:
    return {"subscriber_id": "u1", "quiet_hours": quiet, **profile}


NIGHT = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("now", "end"),
    [
        (utc(2026, 1, 14, 20, 59), None),  # 21:59 Berlin (CET, UTC+1)
        (utc(2026, 1, 14, 21, 0), utc(2026, 1, 15, 6, 0)),  # 22:00 sharp: inside
        (utc(2026, 1, 14, 23, 30), utc(2026, 1, 15, 6, 0)),  # 00:30 the next day
        (utc(2026, 1, 15, 5, 59), utc(2026, 1, 15, 6, 0)),  # 06:59
        (utc(2026, 1, 15, 6, 0), None),  # 07:00 sharp: over
        (utc(2026, 1, 15, 12, 0), None),
    ],
)
def test_a_window_across_midnight(now: datetime, end: datetime | None) -> None:
    assert window_end(now, sub(NIGHT)) == end


def test_a_window_within_one_day() -> None:
    lunch = sub({"start": "12:00", "end": "13:30"})  # UTC: no zone anywhere
    assert window_end(utc(2026, 5, 1, 11, 59), lunch) is None
    assert window_end(utc(2026, 5, 1, 12, 0), lunch) == utc(2026, 5, 1, 13, 30)
    assert window_end(utc(2026, 5, 1, 13, 30), lunch) is None


def test_the_zone_defaults_to_the_subscribers_then_utc() -> None:
    quiet = {"start": "22:00", "end": "07:00"}
    now = utc(2026, 1, 14, 14, 0)  # 23:00 in Tokyo, 14:00 UTC
    assert window_end(now, sub(quiet, timezone="Asia/Tokyo")) == utc(2026, 1, 14, 22, 0)
    assert window_end(now, sub(quiet)) is None
    # The window's own zone wins over the subscriber's.
    own = {**quiet, "timezone": "UTC"}
    assert window_end(now, sub(own, timezone="Asia/Tokyo")) is None


def test_days_name_the_day_a_window_starts() -> None:
    friday_night = sub({**NIGHT, "days": ["FRI"]})
    # 2026-01-16 is a Friday.
    assert window_end(utc(2026, 1, 16, 22, 0), friday_night) == utc(2026, 1, 17, 6, 0)
    assert window_end(utc(2026, 1, 17, 5, 0), friday_night) == utc(2026, 1, 17, 6, 0)  # Sat 06:00
    assert window_end(utc(2026, 1, 15, 22, 0), friday_night) is None  # Thursday night
    assert window_end(utc(2026, 1, 17, 22, 0), friday_night) is None  # Saturday night
    weekend = sub({"start": "08:00", "end": "12:00", "days": ["SAT", "SUN"]})
    assert window_end(utc(2026, 1, 18, 9, 0), weekend) == utc(2026, 1, 18, 12, 0)  # Sunday
    assert window_end(utc(2026, 1, 19, 9, 0), weekend) is None  # Monday


NEW_YORK = {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}


def test_a_night_that_springs_forward_ends_at_the_local_wall_time() -> None:
    # 2026-03-08 02:00 EST → 03:00 EDT: 22:00 EST to 07:00 EDT is 8 hours, not 9.
    assert window_end(utc(2026, 3, 8, 4, 0), sub(NEW_YORK)) == utc(2026, 3, 8, 11, 0)
    assert window_end(utc(2026, 3, 8, 10, 59), sub(NEW_YORK)) == utc(2026, 3, 8, 11, 0)
    assert window_end(utc(2026, 3, 8, 11, 0), sub(NEW_YORK)) is None  # 07:00 EDT


def test_a_night_that_falls_back_lasts_an_hour_longer() -> None:
    # 2026-11-01 02:00 EDT → 01:00 EST: 22:00 EDT (02:00Z) to 07:00 EST (12:00Z).
    first_0130 = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    second_0130 = utc(2026, 11, 1, 6, 30)  # 01:30 EST, an hour later
    for now in (utc(2026, 11, 1, 2, 0), first_0130, second_0130, utc(2026, 11, 1, 11, 59)):
        assert window_end(now, sub(NEW_YORK)) == utc(2026, 11, 1, 12, 0)
    assert window_end(utc(2026, 11, 1, 12, 0), sub(NEW_YORK)) is None


def test_a_start_time_skipped_by_dst_reads_with_the_offset_before_the_change() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: read as 02:30 EST = 03:30 EDT.
    gap = sub({"start": "02:30", "end": "06:00", "timezone": "America/New_York"})
    assert window_end(utc(2026, 3, 8, 7, 15), gap) is None  # 03:15 EDT
    assert window_end(utc(2026, 3, 8, 7, 30), gap) == utc(2026, 3, 8, 10, 0)  # 03:30 EDT


def test_an_end_time_that_occurs_twice_is_its_first_occurrence() -> None:
    # 02:30 happens twice on 2026-10-25 in Berlin (00:30Z in CEST, 01:30Z in CET): the window
    # ends at the first and is not reopened by the repeated hour.
    ambiguous = sub({"start": "00:00", "end": "02:30", "timezone": "Europe/Berlin"})
    assert window_end(utc(2026, 10, 24, 23, 0), ambiguous) == utc(2026, 10, 25, 0, 30)
    assert window_end(utc(2026, 10, 25, 0, 30), ambiguous) is None
    assert window_end(utc(2026, 10, 25, 1, 0), ambiguous) is None  # 02:00 CET, second pass


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "22:00-07:00",
        {"start": "22:00"},
        {"start": "24:00", "end": "07:00"},
        {"start": "7:00", "end": "08:00"},
        {"start": "07:00", "end": "07:00"},
    ],
)
def test_missing_or_unusable_quiet_hours_defer_nothing(stored: Any) -> None:
    assert QuietHours.of_subscriber(sub(stored)) is None
    assert window_end(utc(2026, 1, 1, 7, 30), sub(stored)) is None


def test_an_unknown_stored_zone_falls_back_to_utc() -> None:
    quiet = QuietHours.of_subscriber(sub({"start": "01:00", "end": "02:00", "timezone": "Mars/X"}))
    assert quiet is not None
    assert quiet.tz.key == "UTC"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("00:00", True), ("23:59", True), ("9:00", False), ("24:00", False), ("12:60", False)],
)
def test_hhmm(text: str, ok: bool) -> None:
    assert (parse_hhmm(text) is not None) is ok
