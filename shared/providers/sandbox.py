"""Providers that need no outside service: the dev sandbox and the in-app inbox."""

from __future__ import annotations

import hashlib

from shared.db.base import utcnow
from shared.db.inbox import InboxRepo, Stored
from shared.db.outbox import DevOutboxRepo
from shared.ids import new_id
from shared.inbox.events import EventKind, InboxAnnouncer, item_event
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome

DEFAULT_FEED = "default"  # the feed of an in-app notification whose content names none


class SandboxProvider:
    """Accepts every message and records it in `dev_outbox` (listed at GET /dev/outbox)."""

    name = "SANDBOX"

    def __init__(self, outbox: DevOutboxRepo) -> None:
        self._outbox = outbox

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Record the message; the id is stable per (notification, address)."""
        digest = hashlib.sha256(message.to.encode()).hexdigest()[:10]
        message_id = f"sandbox-{message.notification_id}-{digest}"
        await self._outbox.record(
            {
                "_id": message_id,
                "tenant_id": message.tenant_id,
                "notification_id": message.notification_id,
                "channel": message.channel.value,
                "to": message.to,
                "subject": message.subject,
                "title": message.title,
                "body": message.body,
                "data": message.data,
                "created_at": utcnow(),
            }
        )
        return DeliveryResult(outcome=Outcome.DELIVERED, provider_message_id=message_id)

    async def aclose(self) -> None:
        """Nothing to release."""


class InAppProvider:
    """The in-app channel delivers by writing the subscriber's inbox item, then announcing it
    (numbered event, then a wake-up for the sockets: shared/inbox/events.py)."""

    name = "IN_APP"

    def __init__(self, inbox: InboxRepo, announcer: InboxAnnouncer | None = None) -> None:
        self._inbox = inbox
        self._announcer = announcer

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """One inbox item per notification, however often it is delivered.

        A redelivery (the worker died before recording the outcome) announces the item again,
        as the first announcement may not have been stored; clients take `message.created` for
        an id they hold as a no-op. An item the subscriber already deleted stays deleted.
        """
        delivered = await self._inbox.deliver(
            {
                "_id": new_id("msg"),
                "tenant_id": message.tenant_id,
                "subscriber_id": message.recipient_id,
                "notification_id": message.notification_id,
                "feed_id": message.feed_id or DEFAULT_FEED,
                "category": message.category,
                "title": message.title,
                "body": message.body,
                "data": message.data,
                "deep_link": message.deep_link,
                "seen": False,
                "read": False,
                "created_at": utcnow(),
            }
        )
        if delivered.stored is not Stored.DELETED and self._announcer is not None:
            await self._announcer.announce(
                tenant_id=message.tenant_id,
                subscriber_id=str(message.recipient_id),
                events=[item_event(EventKind.CREATED, delivered.message_id)],
            )
        return DeliveryResult(outcome=Outcome.DELIVERED, provider_message_id=delivered.message_id)

    async def aclose(self) -> None:
        """Nothing to release."""
