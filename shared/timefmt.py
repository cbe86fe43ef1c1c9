"""The one way a time is written out: RFC 3339 in UTC, milliseconds and a `Z`.

Every surface shows times this way (the API's responses, the dead-letter views, the failure
and replay headers), so a value read in one place compares as text with the same value
read in another. Milliseconds because that is what BSON stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def iso_z(value: datetime) -> str: ...
@overload
def iso_z(value: object) -> str | None: ...
def iso_z(value: object) -> str | None:
    """`2026-03-18T10:00:00.000Z`; None for anything not a datetime (a field not set)."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        # BSON dates are UTC; a naive one (a client without tz_aware) means UTC, not local time.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
