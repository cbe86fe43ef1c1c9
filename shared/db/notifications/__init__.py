"""The `notifications` collection: one typed record per (request, recipient, channel)."""

from shared.db.notifications.activity import NotificationActivity
from shared.db.notifications.recovery import NotificationsRepo
from shared.db.notifications.stats import NotificationStats

__all__ = ["NotificationActivity", "NotificationStats", "NotificationsRepo"]
