"""Reading a tenant's recent activity for the ops dashboard (a projection, never the content)."""

from __future__ import annotations

from datetime import datetime

from shared.db.base import Doc
from shared.db.notifications.repo import NotificationStore

_FIELDS = {
    "channel": 1,
    "status": 1,
    "created_at": 1,
    "completed_at": 1,
    "failure_reason": 1,
    "failure_detail": 1,
    "transaction_id": 1,
    "recipient": 1,
    "attempts.provider": 1,
    "attempts.provider_ms": 1,
    "attempts.outcome": 1,
}


async def recent_activity(
    repo: NotificationStore, *, tenant_id: str, since: datetime, limit: int
) -> list[Doc]:
    """The tenant's records created since `since` (at most `limit`), a few fields each."""
    cursor = repo.col.find(
        {"tenant_id": tenant_id, "created_at": {"$gte": since}}, _FIELDS, limit=limit
    )
    return [d async for d in cursor]
