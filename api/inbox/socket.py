"""One subscriber's WebSocket: replay from a sequence number, then live events, in order.

Frames (JSON text), each with the subscriber's `seq` (docs/inbox.md):
- `message.created` / `message.updated` (`message`: the feed item as it is now; a mark-all
  sends `bulk: {status, feedIds, count}` instead) / `message.deleted` (`messageId`);
- `counts` (`unseenCount`, `unreadCount`) after each batch, `seq` being the last event's;
- `reset` when the client's `after` is not in the stream any more (too old, or from another
  deployment): reload the feed and carry on from its `seq`;
- `ping` every heartbeat, with the current `seq`.

Events are read from the subscriber's stream (`inbox_streams`) strictly above the last `seq`
sent, so whatever woke the socket (a wake-up, a heartbeat, a reconnected broker), nothing is
skipped and nothing is sent twice on one socket. An item's frame shows the item as it is when
sent; one deleted in the meantime is sent as `message.deleted` under the same `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import structlog
from pymongo.errors import PyMongoError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.inbox.hub import RealtimeHub
from api.inbox.session import InboxSession
from api.inbox.views import counts_view, feed_item
from shared.db.base import Doc
from shared.db.client import Database
from shared.db.inbox_streams import Stream
from shared.inbox.events import EventKind
from shared.messaging.topology import realtime_routing_key

log = structlog.get_logger(__name__)

CLOSE_GOING_AWAY = 1001  # the API process is stopping: reconnect (to another one)
CLOSE_TRY_AGAIN = 1013  # the database or broker is unavailable: reconnect later
CLOSE_BAD_REQUEST = 4400  # `after` is not a whole number
CLOSE_UNAUTHORIZED = 4401  # no, a bad or an expired session token: get a new session


def frame_for(seq: int, event: Doc, items: dict[str, Doc]) -> dict[str, Any]:
    """The frame of one stored event, with the items it names as they are now."""
    kind = event.get("k")
    if kind == EventKind.MARKED:
        bulk = {"status": event.get("st"), "feedIds": event.get("f"), "count": event.get("n", 0)}
        return {"type": "message.updated", "seq": seq, "bulk": bulk}
    message_id = str(event.get("m"))
    doc = items.get(message_id)
    if kind == EventKind.DELETED or doc is None or doc.get("deleted_at"):
        return {"type": "message.deleted", "seq": seq, "messageId": message_id}
    kind_name = "message.created" if kind == EventKind.CREATED else "message.updated"
    return {"type": kind_name, "seq": seq, "message": feed_item(doc)}


def needs_reset(stream: Stream, after: int) -> bool:
    """True when events after `after` are gone (pruned) or `after` is ahead of the stream."""
    return after > stream.head or after < stream.oldest - 1


class InboxSocket:
    """Serves one accepted WebSocket until the client leaves, the session ends or we stop."""

    def __init__(
        self,
        *,
        websocket: WebSocket,
        db: Database,
        hub: RealtimeHub,
        session: InboxSession,
        after: int | None,
        heartbeat_s: float,
    ) -> None:
        self._ws = websocket
        self._db = db
        self._hub = hub
        self._session = session
        self._cursor = after
        self._heartbeat_s = heartbeat_s
        self._wake = asyncio.Event()
        self._gone = False
        self._stopping = False

    def wake(self) -> None:
        """The stream may have new events."""
        self._wake.set()

    def shutdown(self) -> None:
        """Close with 1001 at the next turn of the loop."""
        self._stopping = True
        self._wake.set()

    async def serve(self) -> None:
        """Replay, then follow the stream; always leaves the hub."""
        s = self._session
        key = realtime_routing_key(tenant_id=s.tenant_id, subscriber_id=s.subscriber_id)
        try:
            await self._hub.join(key, self)
        except Exception as exc:
            log.warning("inbox_socket_refused", reason="realtime unavailable", error=str(exc))
            await self._close(CLOSE_TRY_AGAIN, "realtime unavailable")
            return
        receiver = asyncio.create_task(self._receive())
        try:
            await self._follow()
        except (WebSocketDisconnect, OSError):  # the client went away mid-send
            pass
        except PyMongoError as exc:
            log.warning("inbox_socket_closed", reason="database unavailable", error=str(exc))
            await self._close(CLOSE_TRY_AGAIN, "database unavailable")
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            await self._hub.leave(key, self)

    async def _follow(self) -> None:
        await self._catch_up(initial=True)
        while True:
            left_s = self._session.expires_at - time.time()
            woke = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(self._heartbeat_s, left_s))):
                    await self._wake.wait()
                    woke = True
            self._wake.clear()
            if self._gone:
                return
            if self._stopping:
                await self._close(CLOSE_GOING_AWAY, "server shutting down")
                return
            if time.time() >= self._session.expires_at:
                await self._close(CLOSE_UNAUTHORIZED, "session token expired")
                return
            # A heartbeat reads the stream too: it repairs a wake-up the broker lost.
            await self._catch_up(initial=False)
            if not woke:
                await self._send({"type": "ping", "seq": self._cursor})

    async def _catch_up(self, *, initial: bool) -> None:
        s = self._session
        stream = await self._db.inbox_streams.read(
            tenant_id=s.tenant_id, subscriber_id=s.subscriber_id, after=self._cursor
        )
        frames: list[dict[str, Any]] = []
        if self._cursor is None:
            self._cursor = stream.head  # a new client: live events from here
        elif needs_reset(stream, self._cursor):
            frames.append({"type": "reset", "seq": stream.head})
            self._cursor = stream.head
        elif stream.events:
            ids = [str(e["m"]) for _, e in stream.events if e.get("k") != EventKind.MARKED]
            items = await self._db.inbox.find_many(
                tenant_id=s.tenant_id, subscriber_id=s.subscriber_id, message_ids=ids
            )
            frames.extend(frame_for(seq, e, items) for seq, e in stream.events)
            self._cursor = stream.events[-1][0]
        if not frames and not initial:
            return
        unseen, unread = await self._db.inbox.counts(
            tenant_id=s.tenant_id, subscriber_id=s.subscriber_id
        )
        frames.append({"type": "counts", "seq": self._cursor, **counts_view(unseen, unread)})
        for frame in frames:
            await self._send(frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._ws.send_text(orjson.dumps(frame).decode())

    async def _receive(self) -> None:
        """Read (and ignore) what the client sends, to notice when it leaves."""
        try:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        self._gone = True
        self._wake.set()

    async def _close(self, code: int, reason: str) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED and not self._gone:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await self._ws.close(code=code, reason=reason)
