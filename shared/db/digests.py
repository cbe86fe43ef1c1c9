"""The `digests` collection: one document per digest window, its events inside it.

Race-free by construction (Novu #2569 / #12373 are the bugs avoided):
- the open digest of a (tenant, recipient, channel, digest key) is unique by a unique partial
  index on open digests, and an event joins by one upsert that pushes it into the open one:
  two first events at once cannot open two digests (the loser's upsert hits the index, and
  its retry joins the winner's);
- closing is one conditional update OPEN → CLOSED; after it no event can join, so the events
  a closed digest holds are final. Joining and closing touch the same document, so an event
  is either in the digest that is sent or in the next one, never lost between them.
- CLOSED → SENT / EMPTY once the digest notification is stored; a closer that crashed in
  between is retried (its message is redelivered, or the digest sweep finds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.db.base import Doc, Repo, utcnow

_JOIN_TRIES = 20


class DigestState(StrEnum):
    """Where a digest is in its life."""

    OPEN = "OPEN"  # events join until `closes_at`
    CLOSED = "CLOSED"  # events final; its notification is being sent
    SENT = "SENT"  # its notification is stored and published (`notification_id`)
    EMPTY = "EMPTY"  # every event was cancelled: nothing sent


@dataclass(frozen=True, slots=True)
class DigestKey:
    """What one open digest is unique for."""

    tenant_id: str
    recipient: str
    channel: str
    digest_key: str

    def fields(self) -> Doc:
        """As stored."""
        return {
            "tenant_id": self.tenant_id,
            "recipient": self.recipient,
            "channel": self.channel,
            "digest_key": self.digest_key,
        }


@dataclass(frozen=True, slots=True)
class Joined:
    """What joining did: the digest it opened (if it opened one), digests it closed as full."""

    opened: Doc | None
    closed_full: list[str]
    duplicate: bool = False


class DigestsRepo(Repo):
    """Digests and their events."""

    collection_name = "digests"

    async def ensure_indexes(self) -> None:
        """The unique open digest per key, event look-ups, and the digest sweep's indexes."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [
                        ("tenant_id", ASCENDING),
                        ("recipient", ASCENDING),
                        ("channel", ASCENDING),
                        ("digest_key", ASCENDING),
                    ],
                    unique=True,
                    partialFilterExpression={"state": DigestState.OPEN.value},
                    name="one_open_digest",
                ),
                IndexModel([("tenant_id", 1), ("events.transaction_id", 1)]),
                IndexModel([("tenant_id", 1), ("cancelled.transaction_id", 1)]),
                # The digest sweep looks across tenants at the few digests past their time.
                IndexModel([("state", 1), ("closes_at", 1)], name="digest_sweep_open"),
                IndexModel([("state", 1), ("closed_at", 1)], name="digest_sweep_closed"),
            ]
        )

    async def join(self, *, key: DigestKey, event: Doc, opening: Doc, max_events: int) -> Joined:
        """Push `event` into the key's open digest, opening one with `opening` if none is open.

        A digest holding `max_events` is closed at once (the caller sends it) and a new one
        opened. An event whose transaction id is already in the open digest is not added again
        (a retried request with the same idempotency key).
        """
        transaction_id = event["transaction_id"]
        closed_full: list[str] = []
        for _ in range(_JOIN_TRIES):
            try:
                result = await self.col.update_one(
                    {
                        **key.fields(),
                        "state": DigestState.OPEN.value,
                        "count": {"$lt": max_events},
                        "events.transaction_id": {"$ne": transaction_id},
                    },
                    {
                        "$push": {"events": event},
                        "$inc": {"count": 1},
                        "$set": {"last_event_at": event["at"]},
                        "$setOnInsert": opening,
                    },
                    upsert=True,
                )
            except DuplicateKeyError:
                # An open digest exists that the filter did not match: full, holding this very
                # event, or one that another request opened a moment ago (join it next time).
                current = await self.col.find_one(
                    {**key.fields(), "state": DigestState.OPEN.value},
                    {"count": 1, "events.transaction_id": 1},
                )
                if current is None:
                    continue
                if any(e.get("transaction_id") == transaction_id for e in current["events"]):
                    return Joined(opened=None, closed_full=closed_full, duplicate=True)
                if current.get("count", 0) >= max_events and await self._close_full(current):
                    closed_full.append(current["_id"])
                continue
            if result.upserted_id is not None:
                return Joined(opened=opening, closed_full=closed_full)
            return Joined(opened=None, closed_full=closed_full)
        raise RuntimeError(f"could not join digest {key} in {_JOIN_TRIES} tries")

    async def _close_full(self, doc: Doc) -> bool:
        now = utcnow()
        result = await self.col.update_one(
            {"_id": doc["_id"], "state": DigestState.OPEN.value},
            {"$set": {"state": DigestState.CLOSED.value, "closed_at": now, "closes_at": now}},
        )
        return result.modified_count == 1

    async def remove_event(
        self, *, tenant_id: str, transaction_id: str, cancelled_at: datetime | None
    ) -> bool:
        """Take an event out of its still open digest; with `cancelled_at`, remember it as
        cancelled. False when no open digest holds it."""
        change: dict[str, Any] = {
            "$pull": {"events": {"transaction_id": transaction_id}},
            "$inc": {"count": -1},
        }
        if cancelled_at is not None:
            change["$push"] = {"cancelled": {"transaction_id": transaction_id, "at": cancelled_at}}
        result = await self.col.update_one(
            {
                "tenant_id": tenant_id,
                "events.transaction_id": transaction_id,
                "state": DigestState.OPEN.value,
            },
            change,
        )
        return result.modified_count == 1

    async def find_by_event(self, *, tenant_id: str, transaction_id: str) -> Doc | None:
        """The digest that holds (or held, before it was cancelled) this event."""
        doc = await self.col.find_one(
            {"tenant_id": tenant_id, "events.transaction_id": transaction_id}
        )
        if doc is None:
            doc = await self.col.find_one(
                {"tenant_id": tenant_id, "cancelled.transaction_id": transaction_id}
            )
        return doc

    async def close(self, *, tenant_id: str, digest_id: str, now: datetime) -> Doc | None:
        """OPEN and due → CLOSED; then the digest as it is (None if there is none)."""
        await self.col.update_one(
            {
                "_id": digest_id,
                "tenant_id": tenant_id,
                "state": DigestState.OPEN.value,
                "closes_at": {"$lte": now},
            },
            {"$set": {"state": DigestState.CLOSED.value, "closed_at": now}},
        )
        return await self.col.find_one({"_id": digest_id, "tenant_id": tenant_id})

    async def finish(
        self,
        *,
        tenant_id: str,
        digest_id: str,
        state: DigestState,
        notification_id: str | None = None,
    ) -> bool:
        """CLOSED → SENT (with its notification) or EMPTY; False if it had moved on already."""
        fields: Doc = {"state": state.value, "finished_at": utcnow()}
        if notification_id is not None:
            fields["notification_id"] = notification_id
        result = await self.col.update_one(
            {"_id": digest_id, "tenant_id": tenant_id, "state": DigestState.CLOSED.value},
            {"$set": fields},
        )
        return result.modified_count == 1

    async def overdue(self, *, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, digest id) of digests whose close or send is overdue: OPEN past
        `closes_at` (the flush message was lost) or CLOSED since before `before` (its closer
        died and its message is gone)."""
        found: list[tuple[str, str]] = []
        for state, field in ((DigestState.OPEN, "closes_at"), (DigestState.CLOSED, "closed_at")):
            cursor = self.col.find(
                {"state": state.value, field: {"$lt": before}}, {"tenant_id": 1}
            ).limit(limit)
            found += [(d["tenant_id"], d["_id"]) async for d in cursor]
        return found


class DigestActivityRepo(Repo):
    """When the last LOOK_BACK event of each digest key arrived."""

    collection_name = "digest_activity"

    async def ensure_indexes(self) -> None:
        """One document per key."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", 1), ("recipient", 1), ("channel", 1), ("digest_key", 1)],
                    unique=True,
                    name="digest_activity_key",
                )
            ]
        )

    async def touch(self, *, key: DigestKey, at: datetime) -> datetime | None:
        """Record an event at `at`; the time of the one before it (None: the first)."""
        for _ in range(3):
            try:
                before = await self.col.find_one_and_update(
                    key.fields(), {"$set": {"last_event_at": at}}, upsert=True
                )
            except DuplicateKeyError:  # two first events at once: the loser sees the winner
                continue
            last: datetime | None = before.get("last_event_at") if before else None
            return last
        raise RuntimeError(f"could not record digest activity for {key}")
