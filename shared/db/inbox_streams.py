"""The `inbox_streams` collection: each subscriber's numbered inbox events, for the WebSocket.

One document per (tenant, subscriber) holds `seq` (the number of the last event) and the
last events in order. An append is one update of that document — `$inc` the number and
`$push` the events in the same atomic write — so two concurrent deliveries can neither take
one number twice nor leave a number without its event, and no event becomes readable before
one with a smaller number: a reader resuming after N never misses anything (the gap Novu
#4439 shows). The broker only wakes readers up; this document is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.db.base import Doc, Repo
from shared.db.batching import Coalescer

RECENT = 64  # events read first; a reader further behind reads the whole document


@dataclass(frozen=True, slots=True)
class Append:
    """Events for one subscriber's stream, and how many of them the stream keeps."""

    tenant_id: str
    subscriber_id: str
    events: list[Doc]
    keep: int


@dataclass(frozen=True, slots=True)
class Stream:
    """A subscriber's stream as read: the last number, the oldest number still kept (head + 1
    when none is), and the events asked for with their numbers."""

    head: int
    oldest: int
    events: list[tuple[int, Doc]] = field(default_factory=list)


def _key(tenant_id: str, subscriber_id: str) -> Doc:
    return {"t": tenant_id, "s": subscriber_id}


class InboxStreamsRepo(Repo):
    """Numbered events per subscriber; appends from many processes, reads by the sockets."""

    collection_name = "inbox_streams"

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db)
        self._appends: Coalescer[None, Append, None] = Coalescer(self._append_batch)

    async def ensure_indexes(self) -> None:
        """Only `_id` (tenant and subscriber) is ever looked up."""

    async def append(
        self, *, tenant_id: str, subscriber_id: str, events: list[Doc], keep: int
    ) -> None:
        """Number and store `events` after every event stored before them."""
        await self._appends.submit(
            None,
            Append(tenant_id=tenant_id, subscriber_id=subscriber_id, events=events, keep=keep),
        )

    async def _append_batch(self, _: None, appends: list[Append]) -> list[None]:
        # One command for every stream written at once; each update stays atomic on its own.
        ops = [
            UpdateOne(
                {"_id": _key(a.tenant_id, a.subscriber_id)},
                {
                    "$inc": {"seq": len(a.events)},
                    "$push": {"events": {"$each": a.events, "$slice": -a.keep}},
                    "$setOnInsert": {"tenant_id": a.tenant_id, "subscriber_id": a.subscriber_id},
                },
                upsert=True,
            )
            for a in appends
        ]
        await self.col.bulk_write(ops, ordered=True)
        return [None] * len(appends)

    async def read(self, *, tenant_id: str, subscriber_id: str, after: int | None) -> Stream:
        """The head, and the kept events numbered above `after` (none for None)."""
        key = {"_id": _key(tenant_id, subscriber_id)}
        if after is None:
            doc = await self.col.find_one(key, {"seq": 1})
            head = int(doc.get("seq", 0)) if doc else 0
            return Stream(head=head, oldest=head + 1)
        doc = await self.col.find_one(key, {"seq": 1, "events": {"$slice": -RECENT}})
        recent = len(doc.get("events") or []) if doc is not None else 0
        if doc is not None and recent == RECENT and int(doc.get("seq", 0)) - after > RECENT:
            # Further behind than the recent events: read them all.
            doc = await self.col.find_one(key, {"seq": 1, "events": 1})
        if doc is None:
            return Stream(head=0, oldest=1)
        head = int(doc.get("seq", 0))
        events: list[Doc] = doc.get("events") or []
        first = head - len(events) + 1
        # With only the recent events read, `oldest` is theirs: a reader that far behind read
        # the whole document instead, so this never makes a reset of a reader within reach.
        numbered = [(first + i, e) for i, e in enumerate(events) if first + i > after]
        return Stream(head=head, oldest=first, events=numbered)
