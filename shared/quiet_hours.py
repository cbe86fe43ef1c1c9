"""A subscriber's quiet hours: is `now` inside the window, and when does it end? Pure.

Stored on the subscriber document as `quiet_hours: {start, end, timezone?, days?}`:
`start` / `end` are local wall times "HH:MM"; `end` earlier than `start` crosses midnight
(22:00 to 07:00 ends the next morning). `timezone` defaults to the subscriber's own `timezone`,
else UTC. `days` (MON … SUN) names the days a window *starts* on; absent means every day, so
`{start: "22:00", end: "07:00", days: ["FRI"]}` is Friday 22:00 to Saturday 07:00.

Wall times are resolved with zoneinfo on the day they fall on: a time that does not exist
that day (skipped by a DST change) is read with the offset before the change (02:30 on a
spring-forward night in New York is 03:30 EDT); a time that occurs twice is its first
occurrence. A window is [start, end): at `end` exactly it is over.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # index = date.weekday()
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time | None:
    """`"07:30"` → 07:30; None unless it is HH:MM from 00:00 to 23:59."""
    match = _HHMM.match(value)
    return time(int(match.group(1)), int(match.group(2))) if match else None


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone, or None if there is no such zone."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window of local wall times in one zone, on some days of the week."""

    start: time
    end: time
    tz: zoneinfo.ZoneInfo
    days: frozenset[int] | None = None  # weekday numbers (MON = 0); None: every day

    @classmethod
    def of_subscriber(cls, subscriber: Mapping[str, Any] | None) -> QuietHours | None:
        """The subscriber's window, or None if it has none (or what is stored is unusable)."""
        stored = (subscriber or {}).get("quiet_hours")
        if not isinstance(stored, Mapping):
            return None
        start = parse_hhmm(str(stored.get("start", "")))
        end = parse_hhmm(str(stored.get("end", "")))
        if start is None or end is None or start == end:
            return None
        tz_name = stored.get("timezone") or (subscriber or {}).get("timezone") or "UTC"
        tz = zone(str(tz_name)) or zoneinfo.ZoneInfo("UTC")
        days_given = stored.get("days")
        days = None
        if isinstance(days_given, list):
            days = frozenset(DAYS.index(d) for d in days_given if d in DAYS)
        return cls(start=start, end=end, tz=tz, days=days)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The window starting on local `day`, as instants."""
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return (
            datetime.combine(day, self.start, tzinfo=self.tz),
            datetime.combine(end_day, self.end, tzinfo=self.tz),
        )

    def window_end(self, now: datetime) -> datetime | None:
        """When the window `now` falls in ends (UTC), or None if `now` is outside every window."""
        today = now.astimezone(self.tz).date()
        ends = []
        # A window that started yesterday may still be open (across midnight).
        for day in (today - timedelta(days=1), today):
            if self.days is not None and day.weekday() not in self.days:
                continue
            start, end = self._window(day)
            if start <= now < end:
                ends.append(end.astimezone(UTC))  # compared as instants, not wall times
        return max(ends) if ends else None


def window_end(now: datetime, subscriber: Mapping[str, Any] | None) -> datetime | None:
    """When the subscriber's quiet hours around `now` end, or None if they are not in them."""
    quiet = QuietHours.of_subscriber(subscriber)
    return quiet.window_end(now) if quiet is not None else None
