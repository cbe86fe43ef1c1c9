"""Inbox items and counts in seed 000's shapes, for the RPCs and the socket's frames."""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.db.inbox import status_of
from shared.timefmt import iso_z


def feed_item(doc: Doc) -> dict[str, Any]:
    """The seed's `{messageId, notificationId, title, body, data, deepLink, status, category,
    createdAt}`, plus `feedId` (our extension: a client filtering by feed can place live items)."""
    return {
        "messageId": doc["_id"],
        "notificationId": doc.get("notification_id"),
        "title": doc.get("title"),
        "body": doc.get("body"),
        "data": doc.get("data") or {},
        "deepLink": doc.get("deep_link"),
        "status": status_of(doc),
        "category": doc.get("category"),
        "createdAt": iso_z(doc.get("created_at")),
        "feedId": doc.get("feed_id"),
    }


def counts_view(unseen: int, unread: int) -> dict[str, int]:
    """`{unseenCount, unreadCount}`."""
    return {"unseenCount": unseen, "unreadCount": unread}
