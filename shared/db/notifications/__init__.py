"""The `notifications` collection: one typed record per (request, recipient, channel)."""

from shared.db.notifications.recovery import NotificationsRepo

__all__ = ["NotificationsRepo"]
