"""The database ceiling: what the database server takes through the least write set a
notification needs, with no application around it; and the server's own op counters.

The least write set of one notification is: its record stored, claimed by a worker, and its
outcome written. Done in batches the way a tuned pipeline would do them, per batch of 100:
one `insert_many` of notification-sized documents (the real record's shape, in a collection
with the real indexes), one claim (`update_many` on the batch's `_id`s with the expected
status) and one outcome (`bulk_write` of a per-document `$set`). A few batches are in flight
at once, like several API and worker processes. Documents/s through all three is the ceiling
the pipeline's rates are compared with, next to the broker's.

The server's op counters (benchkit/dbops.py) are read around the run, so the figure shows
how the server counts these commands (3 per batch on SecantusDB).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import bson
from pymongo import UpdateOne

from benchkit.dbops import OwnCommands, per_notification, snapshot
from shared.db.base import utcnow
from shared.db.client import connect_database
from shared.db.notifications.documents import to_document
from shared.domain import Channel, Status
from shared.ids import new_id
from shared.records import Content, NotificationRecord

BATCH = 100
IN_FLIGHT = 4
TENANT = "dbceiling"

Doc = dict[str, Any]


def _document(transaction_id: str) -> Doc:
    record = NotificationRecord.new(
        tenant_id=TENANT,
        channel=Channel.EMAIL,
        recipient=f"user-{new_id('sub')}",
        transaction_id=transaction_id,
        source="bench.dbceiling",
        content=Content(subject="Your code", body="Your code is 123456."),
    )
    return to_document(record)


async def measure_database_ceiling(
    *, url: str, database: str, documents: int, batch: int = BATCH, in_flight: int = IN_FLIGHT
) -> dict[str, Any]:
    """Documents/s through insert_many + claim + outcome in batches of `batch`."""
    db = connect_database(url=url, name=database, timeout_ms=5000)
    col = db.notifications.col
    try:
        await db.notifications.ensure_indexes()
        indexes = len([i async for i in await col.list_indexes()])
        batches = max(1, documents // batch)
        # Built before the clock starts: the ceiling is the server's, not pydantic's.
        prepared = [[_document(new_id("txn")) for _ in range(batch)] for _ in range(batches)]
        next_batch = 0

        async def flow() -> None:
            nonlocal next_batch
            while next_batch < batches:
                docs = prepared[next_batch]
                next_batch += 1
                ids = [d["_id"] for d in docs]
                await col.insert_many(docs, ordered=False)
                now = utcnow()
                claimed = await col.update_many(
                    {"_id": {"$in": ids}, "tenant_id": TENANT, "status": Status.QUEUED.value},
                    {"$set": {"status": Status.PROCESSING.value, "processing_at": now}},
                )
                if claimed.modified_count != len(ids):
                    raise RuntimeError(f"claimed {claimed.modified_count} of {len(ids)}")
                done = utcnow()
                outcome = await col.bulk_write(
                    [
                        UpdateOne(
                            {"_id": i, "tenant_id": TENANT, "status": Status.PROCESSING.value},
                            {
                                "$set": {
                                    "status": Status.DELIVERED.value,
                                    "provider_message_id": new_id("pm"),
                                    "completed_at": done,
                                    "delivered_at": done,
                                    "updated_at": done,
                                }
                            },
                        )
                        for i in ids
                    ],
                    ordered=False,
                )
                if outcome.modified_count != len(ids):
                    raise RuntimeError(f"finished {outcome.modified_count} of {len(ids)}")

        own = OwnCommands()  # empty: every command counted here is the ceiling's own
        before = await snapshot(db.client, own)
        started = time.perf_counter()
        await asyncio.gather(*(flow() for _ in range(min(in_flight, batches))))
        elapsed = time.perf_counter() - started
        after = await snapshot(db.client, own)
        total = batches * batch
        ops = per_notification(before, after, delivered=total)
        ops["commands"]["command"] -= 1  # the first serverStatus call
        return {
            "documents": total,
            "batch": batch,
            "in_flight": in_flight,
            "indexes": indexes,
            "document_bytes": len(bson.encode(prepared[0][0])),
            "elapsed_s": round(elapsed, 3),
            "per_s": round(total / elapsed, 1),
            "method": "insert_many(batch) + update_many claim on the _ids + bulk_write of "
            "per-document $set, batches in flight at once, real record shape and indexes",
            "opcounters": ops["commands"],
            "commands_per_batch": round(sum(ops["commands"].values()) / batches, 2),
            "documents_per_document": ops["documents_per_notification"],
        }
    finally:
        await db.client.drop_database(database)
        await db.close()
