"""Announcing inbox changes: a numbered event in the subscriber's stream, then a wake-up.

The event is stored first (`inbox_streams`), after the change it describes; the wake-up on
`notifications.realtime` only tells the API processes holding that subscriber's sockets to
read the stream. A lost wake-up delays an event until the socket's next heartbeat, which
reads the stream too; it never loses one.
"""

from __future__ import annotations

from enum import StrEnum

import structlog

from shared.db.base import Doc, utcnow
from shared.db.inbox_streams import InboxStreamsRepo
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.messaging.topology import realtime_routing_key

log = structlog.get_logger(__name__)


class EventKind(StrEnum):
    """What a stored event says; the socket turns each into one frame."""

    CREATED = "created"  # an item arrived (`m`: its id)
    UPDATED = "updated"  # an item was marked (`m`)
    DELETED = "deleted"  # an item was deleted (`m`)
    MARKED = "marked"  # mark-all (`st`: the status, `f`: the feeds or None, `n`: how many)


def item_event(kind: EventKind, message_id: str) -> Doc:
    """An event about one item."""
    return {"k": kind.value, "m": message_id, "at": utcnow()}


def marked_event(*, status: str, feed_ids: list[str] | None, count: int) -> Doc:
    """The event of a mark-all."""
    return {"k": EventKind.MARKED.value, "st": status, "f": feed_ids, "n": count, "at": utcnow()}


class InboxAnnouncer:
    """Stores a subscriber's events in order and wakes the sockets that follow them."""

    def __init__(self, *, streams: InboxStreamsRepo, broker: Broker, keep: int) -> None:
        self._streams = streams
        self._broker = broker
        self._keep = keep

    async def announce(self, *, tenant_id: str, subscriber_id: str, events: list[Doc]) -> None:
        """Append the events (database errors propagate), then publish the wake-up."""
        await self._streams.append(
            tenant_id=tenant_id, subscriber_id=subscriber_id, events=events, keep=self._keep
        )
        await self.wake(tenant_id=tenant_id, subscriber_id=subscriber_id)

    async def wake(self, *, tenant_id: str, subscriber_id: str) -> None:
        """Tell the API processes to read this subscriber's stream; best effort."""
        key = realtime_routing_key(tenant_id=tenant_id, subscriber_id=subscriber_id)
        try:
            await self._broker.publish_realtime(routing_key=key, body={})
        except BrokerUnavailable as exc:
            # The event is stored: sockets read it at their next heartbeat.
            log.warning("inbox_wake_not_published", error=str(exc))
