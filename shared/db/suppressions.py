"""The `suppressions` collection: recipient addresses proven dead, per tenant and channel.

An entry is mirrored as a mark on every subscriber document holding the address
(`SubscribersRepo.mark_suppressed`), because the delivery worker reads that document for each
notification anyway: refusing a suppressed address then costs no query. This repository keeps
the two in step: `suppress` and `remove` write both, `refresh_marks` recomputes one subscriber's
marks after its addresses changed.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.db.base import Doc, Repo, utcnow
from shared.db.subscribers import ADDRESS_FIELDS, SubscribersRepo

# Why an address is suppressed; `opted_out` sends end OPTED_OUT, the others INVALID_CREDENTIAL.
REASON_INVALID = "invalid_address"
REASON_OPTED_OUT = "opted_out"
REASON_BOUNCED = "hard_bounce"


class SuppressionsRepo(Repo):
    """Suppressed addresses, unique per (tenant, channel, address)."""

    collection_name = "suppressions"

    def __init__(self, db: AsyncDatabase[Doc], *, subscribers: SubscribersRepo) -> None:
        super().__init__(db)
        self._subscribers = subscribers

    async def ensure_indexes(self) -> None:
        """One entry per address and channel per tenant."""
        await self.col.create_indexes(
            [
                IndexModel(
                    [("tenant_id", ASCENDING), ("channel", ASCENDING), ("address", ASCENDING)],
                    unique=True,
                    name="tenant_channel_address",
                ),
            ]
        )

    async def suppress(
        self,
        *,
        tenant_id: str,
        channel: str,
        address: str,
        reason: str,
        source: str,
        notification_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Put an address on the list (or refresh its entry) and mark its subscribers.

        Idempotent: receipts and redelivered messages may report the same address again.
        """
        if channel not in ADDRESS_FIELDS:
            raise ValueError(f"channel {channel} has no suppressible address")
        now = utcnow()
        await self.col.update_one(
            {"tenant_id": tenant_id, "channel": channel, "address": address},
            {
                "$set": {
                    "reason": reason,
                    "source": source,
                    "detail": detail,
                    "notification_id": notification_id,
                    "updated_at": now,
                },
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
        )
        await self._subscribers.mark_suppressed(
            tenant_id=tenant_id, channel=channel, address=address, reason=reason
        )

    async def remove(self, *, tenant_id: str, channel: str, address: str) -> bool:
        """Take an address off the list and its marks off the subscribers; False if absent."""
        result = await self.col.delete_one(
            {"tenant_id": tenant_id, "channel": channel, "address": address}
        )
        # Unmarked even when no entry was found: a crash between the two writes leaves marks.
        await self._subscribers.unmark_suppressed(
            tenant_id=tenant_id, channel=channel, address=address
        )
        return result.deleted_count == 1

    async def list_page(
        self, *, tenant_id: str, channel: str | None, page: int, page_size: int
    ) -> tuple[list[Doc], int]:
        """A page in the order addresses were suppressed, and the total."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if channel is not None:
            query["channel"] = channel
        cursor = (
            self.col.find(query)
            .sort("_id", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [d async for d in cursor]
        total = await self.col.count_documents(query)
        return items, total

    async def refresh_marks(self, *, tenant_id: str, subscriber_id: str, profile: Doc) -> None:
        """Recompute a subscriber's marks from its current addresses (after they changed)."""
        addresses = {
            channel: profile[field]
            for channel, field in ADDRESS_FIELDS.items()
            if isinstance(profile.get(field), str)
        }
        marks: list[Doc] = []
        if addresses:
            cursor = self.col.find(
                {"tenant_id": tenant_id, "address": {"$in": list(addresses.values())}}
            )
            async for entry in cursor:
                if addresses.get(entry["channel"]) == entry["address"]:
                    marks.append(
                        {
                            "channel": entry["channel"],
                            "address": entry["address"],
                            "reason": entry["reason"],
                        }
                    )
        await self._subscribers.set_suppression_marks(
            tenant_id=tenant_id, subscriber_id=subscriber_id, marks=marks
        )
