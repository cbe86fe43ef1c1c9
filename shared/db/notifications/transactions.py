"""A transaction's records counted and paged, never loaded whole (a topic send may have a
million): `manage/get-delivery-status` counts them per status in one aggregation and
`manage/list-transaction-recipients` reads a page at a time on the index
`(tenant_id, transaction_id, status)`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING

from shared.db.base import Doc
from shared.db.notifications.documents import from_document, values
from shared.db.notifications.repo import NotificationStore
from shared.domain import Status
from shared.records import NotificationRecord


@dataclass(frozen=True, slots=True)
class TransactionCounts:
    """How many records of a transaction are in each status, and the last delivery."""

    by_status: dict[Status, int]
    last_delivered_at: datetime | None

    @property
    def total(self) -> int:
        """Every record of the transaction."""
        return sum(self.by_status.values())

    def by_result(self) -> dict[str, int]:
        """The counts per seed delivery result (every in-flight status reads as SENT)."""
        out: dict[str, int] = {}
        for status, n in self.by_status.items():
            out[status.result] = out.get(status.result, 0) + n
        return out


def statuses_of(result: str) -> list[Status]:
    """The statuses that read as one seed delivery result."""
    return [s for s in Status if s.result == result]


class TransactionReads(NotificationStore):
    """Counting and paging one transaction's records."""

    async def count_transaction(self, *, tenant_id: str, transaction_id: str) -> TransactionCounts:
        """Per-status counts in one aggregation."""
        pipeline: list[Doc] = [
            {"$match": {"tenant_id": tenant_id, "transaction_id": transaction_id}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}, "last": {"$max": "$delivered_at"}}},
        ]
        counts: dict[Status, int] = {}
        last: datetime | None = None
        async for row in await self.col.aggregate(pipeline):
            counts[Status(row["_id"])] = int(row["n"])
            if row.get("last") is not None and (last is None or row["last"] > last):
                last = row["last"]
        return TransactionCounts(by_status=counts, last_delivered_at=last)

    async def transaction_page(
        self,
        *,
        tenant_id: str,
        transaction_id: str,
        statuses: list[Status] | None,
        page: int,
        page_size: int,
    ) -> tuple[list[NotificationRecord], int]:
        """A page of the transaction's records in creation order (`_id`), optionally only
        those in `statuses`, and how many match."""
        query: Doc = {"tenant_id": tenant_id, "transaction_id": transaction_id}
        if statuses is not None:
            query["status"] = {"$in": values(tuple(statuses))}
        cursor = (
            self.col.find(query)
            .sort("_id", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [from_document(d) async for d in cursor]
        return items, await self.col.count_documents(query)
