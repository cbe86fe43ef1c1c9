"""The scheduling rules with real time zones: wall clock, DST gap and overlap, limits, cron."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.scheduling import (
    MAX_AHEAD,
    ScheduleError,
    check_cron,
    check_window,
    next_cron_fire,
    parse_datetime,
    resolve_scheduled_at,
    wall_clock_to_utc,
    zone_named,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        # An ordinary winter and summer time.
        (datetime(2026, 1, 15, 9, 0), NEW_YORK, _utc(2026, 1, 15, 14, 0)),
        (datetime(2026, 7, 15, 9, 0), NEW_YORK, _utc(2026, 7, 15, 13, 0)),
        # Spring forward: 02:00-03:00 does not exist; 02:30 moves forward by the gap (03:30 EDT).
        (datetime(2026, 3, 8, 2, 30), NEW_YORK, _utc(2026, 3, 8, 7, 30)),
        (datetime(2026, 3, 29, 2, 15), BERLIN, _utc(2026, 3, 29, 1, 15)),
        # Fall back: 01:30 happens twice; the first occurrence (EDT, UTC-4) is taken.
        (datetime(2026, 11, 1, 1, 30), NEW_YORK, _utc(2026, 11, 1, 5, 30)),
        (datetime(2026, 10, 25, 2, 30), BERLIN, _utc(2026, 10, 25, 0, 30)),
    ],
)
def test_wall_clock_in_a_zone(wall: datetime, zone: ZoneInfo, expected: datetime) -> None:
    assert wall_clock_to_utc(wall, zone) == expected


def test_the_gap_moves_forward_by_exactly_its_length() -> None:
    before = wall_clock_to_utc(datetime(2026, 3, 8, 1, 59), NEW_YORK)
    in_gap = wall_clock_to_utc(datetime(2026, 3, 8, 2, 0), NEW_YORK)
    after = wall_clock_to_utc(datetime(2026, 3, 8, 3, 0), NEW_YORK)
    assert in_gap - before == timedelta(minutes=1)
    assert in_gap == after  # 02:00 does not exist: it is 03:00 EDT


def test_a_timezone_makes_the_written_time_wall_clock_there_even_with_z() -> None:
    # The seed's example: 09:00 in New York, although written with a Z.
    written = parse_datetime("2026-03-20T09:00:00Z")
    resolved = resolve_scheduled_at(
        written, timezone="America/New_York", subscriber_timezone="Asia/Tokyo"
    )
    assert resolved == _utc(2026, 3, 20, 13, 0)


def test_without_timezone_an_offset_is_an_absolute_instant() -> None:
    written = parse_datetime("2026-03-20T09:00:00+02:00")
    assert resolve_scheduled_at(
        written, timezone=None, subscriber_timezone="America/New_York"
    ) == _utc(2026, 3, 20, 7, 0)


def test_without_timezone_a_naive_time_is_the_subscribers_else_utc() -> None:
    written = parse_datetime("2026-03-20T09:00:00")
    assert resolve_scheduled_at(written, timezone=None, subscriber_timezone="Asia/Tokyo") == _utc(
        2026, 3, 20, 0, 0
    )
    assert resolve_scheduled_at(written, timezone=None, subscriber_timezone=None) == _utc(
        2026, 3, 20, 9, 0
    )


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T00:00:00", ""])
def test_unparseable_times_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError, match="ISO-8601"):
        parse_datetime(text)


def test_unknown_zones_are_refused() -> None:
    with pytest.raises(ScheduleError, match="IANA"):
        zone_named("Mars/Olympus_Mons")


def test_the_window_allows_skew_and_refuses_the_past_and_beyond_a_year() -> None:
    now = _utc(2026, 6, 1, 12, 0)
    assert check_window(now - timedelta(seconds=5), now=now) == now  # skew: due now
    assert check_window(now + timedelta(hours=1), now=now) == now + timedelta(hours=1)
    with pytest.raises(ScheduleError, match="in the past"):
        check_window(now - timedelta(minutes=1), now=now)
    with pytest.raises(ScheduleError, match="one year"):
        check_window(now + MAX_AHEAD + timedelta(seconds=1), now=now)


def test_cron_fires_in_its_zone_and_across_dst() -> None:
    # 09:00 New York: 14:00 UTC in winter, 13:00 UTC in summer.
    assert next_cron_fire("0 9 * * *", zone=NEW_YORK, after=_utc(2026, 3, 7, 15, 0)) == _utc(
        2026, 3, 8, 13, 0
    )
    # A fire in the gap moves forward; a fire in the overlap happens once.
    assert next_cron_fire("30 2 * * *", zone=NEW_YORK, after=_utc(2026, 3, 8, 5, 0)) == _utc(
        2026, 3, 8, 7, 30
    )
    first = next_cron_fire("30 1 * * *", zone=NEW_YORK, after=_utc(2026, 11, 1, 4, 0))
    assert first == _utc(2026, 11, 1, 5, 30)
    assert next_cron_fire("30 1 * * *", zone=NEW_YORK, after=first) == _utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize("expression", ["0 9 * *", "61 * * * *", "not cron", "0 0 30 2 *"])
def test_bad_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        check_cron(expression)


def test_good_cron_expressions_are_normalised() -> None:
    assert check_cron(" */5  * * * MON ") == "*/5 * * * MON"
