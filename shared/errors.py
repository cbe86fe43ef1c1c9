"""The project's error tree. HTTP codes are assigned in `api/errors.py` and nowhere else.

    NotifyError
    ├── ValidationFailed      bad input: every violated rule, naming field and rule
    ├── Unauthorized          no or unknown credentials
    ├── Forbidden             credentials valid, action not allowed (scope, tenant)
    ├── NotFound              the named subscriber / template / notification does not exist
    ├── Conflict              the request collides with existing state
    │   └── Busy                  another operation holds the resource (e.g. a DLQ); retry
    ├── RateLimited           the key spent its budget for this window; retry after a while
    └── Unavailable           a dependency is down; nothing was promised to the caller
        ├── BrokerUnavailable     RabbitMQ unreachable or a publish was not confirmed in time
        └── DatabaseUnavailable   MongoDB unreachable or timed out

Provider failures are not exceptions: adapters classify them into `DeliveryResult`.
"""

from __future__ import annotations


class NotifyError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(NotifyError):
    """Input broke one or more rules; `details` lists each, naming the field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("Validation failed", details=errors)


class Unauthorized(NotifyError):
    """Missing or invalid credentials."""


class Forbidden(NotifyError):
    """Valid credentials that may not do this."""


class NotFound(NotifyError):
    """A named resource does not exist (in this tenant)."""


class Conflict(NotifyError):
    """The request collides with existing state."""


class Busy(Conflict):
    """Another operation holds the resource right now; the same request may succeed later."""


class RateLimited(NotifyError):
    """The caller's key has used its budget for the current window."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(NotifyError):
    """A dependency is down; retry later."""


class BrokerUnavailable(Unavailable):
    """RabbitMQ cannot be reached or did not confirm a publish in time."""


class DatabaseUnavailable(Unavailable):
    """MongoDB cannot be reached or timed out."""
