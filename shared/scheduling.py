"""When a notification is due: wall-clock times in a time zone, DST, limits, cron fires.

Pure functions, no I/O; the rules are documented in docs/scheduling.md.

- A wall-clock time that does not exist (the spring-forward gap) moves forward by the gap
  (02:30 on a day New York skips 02:00-03:00 becomes 03:30 EDT); an ambiguous one (fall-back)
  takes its first occurrence (01:30 EDT, not 01:30 EST). That is PEP 495's `fold=0`.
- A time more than `PAST_TOLERANCE` in the past, or more than `MAX_AHEAD` ahead, is refused.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterBadDateError, croniter

PAST_TOLERANCE = timedelta(seconds=10)  # clock skew between a client and us
MAX_AHEAD = timedelta(days=365)


class ScheduleError(ValueError):
    """A time or zone that cannot be scheduled; the message completes "<field> …"."""


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `name`, or ScheduleError."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("must be an IANA time zone such as America/New_York") from None


def parse_datetime(text: str) -> datetime:
    """ISO-8601 date-time, naive (no offset written) or aware; ScheduleError otherwise."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError("must be an ISO-8601 date-time such as 2026-03-20T09:00:00Z") from None


def wall_clock_to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone` (gap: forward by the gap; overlap: first)."""
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC)


def resolve_scheduled_at(
    written: datetime, *, timezone: str | None, subscriber_timezone: str | None
) -> datetime:
    """The UTC instant a `scheduledAt` names.

    With `timezone`, the date and time written are wall-clock time there (an offset or `Z`
    written with it is ignored: the seed's example pairs `...T09:00:00Z` with New York and
    means 09:00 in New York). Without it, an offset makes an absolute instant, and a time with
    none is wall-clock time in the subscriber's zone, else UTC.
    """
    if timezone is not None:
        return wall_clock_to_utc(written.replace(tzinfo=None), zone_named(timezone))
    if written.tzinfo is not None:
        return written.astimezone(UTC)
    zone: tzinfo = UTC
    if subscriber_timezone:
        try:
            zone = zoneinfo.ZoneInfo(subscriber_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = UTC  # validated when stored; an odd one is not the sender's fault
    return wall_clock_to_utc(written, zone)


def check_window(when: datetime, *, now: datetime) -> datetime:
    """`when` if it may be scheduled (a few seconds past counts as now); else ScheduleError."""
    if when < now - PAST_TOLERANCE:
        raise ScheduleError(f"is in the past ({_iso(when)}; now is {_iso(now)})")
    if when > now + MAX_AHEAD:
        raise ScheduleError("must be at most one year ahead")
    return max(when, now)


def check_cron(expression: str) -> str:
    """A valid 5-field cron expression, or ScheduleError."""
    fields = expression.split()
    if len(fields) != 5 or not croniter.is_valid(expression):
        raise ScheduleError("must be a valid 5-field cron expression such as 0 9 * * MON")
    normal = " ".join(fields)
    next_cron_fire(normal, zone=UTC, after=datetime(2000, 1, 1, tzinfo=UTC))  # it fires at all
    return normal


def next_cron_fire(expression: str, *, zone: tzinfo, after: datetime) -> datetime:
    """The first fire of `expression` (wall-clock in `zone`) strictly after `after`, in UTC.

    Iterated in wall-clock time so the DST rules above apply to cron fires too: a fire in the
    gap moves forward by the gap, a fire in the overlap happens once (its first occurrence).
    """
    wall = after.astimezone(zone).replace(tzinfo=None)
    it = croniter(expression, wall)
    try:
        for _ in range(4):  # a fire in the overlap's second hour can come before `after`
            fire = wall_clock_to_utc(it.get_next(datetime), zone)
            if fire > after:
                return fire
    except CroniterBadDateError:
        pass
    raise ScheduleError("never fires (e.g. 30 February)")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
