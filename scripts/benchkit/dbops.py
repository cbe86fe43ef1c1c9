"""Database commands per delivered notification, from the server's own op counters.

`serverStatus.opcounters` (`insert`, `query`, `update`, `delete`, `getmore`, `command`) is read
before and after a phase; the bench's own reads in between (its polling of the records and the
`serverStatus` calls) are counted by a command listener on its client and taken off, so what is
left is what the system (API, workers, maintenance) asked of the server.

What the counters count differs by server (docs/benchmark.md): SecantusDB counts one per
command (an `insert_many` of 100 documents is 1 `insert`, a `bulk_write` of 100 updates is 1
`update`, `count` is a `query`); `mongod` counts `insert` per document and `update`/`delete` per
statement, and also reports documents (`metrics.document`), which SecantusDB does not: there
`documents` is None.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, monitoring

COUNTERS = ("insert", "query", "update", "delete", "getmore", "command")
DOCUMENT_COUNTERS = ("inserted", "updated", "deleted", "returned")
_BUCKET = {
    "insert": "insert",
    "find": "query",
    "update": "update",
    "findAndModify": "update",
    "delete": "delete",
    "getMore": "getmore",
}

Doc = dict[str, Any]


class OwnCommands(monitoring.CommandListener):
    """Counts the commands a client of the bench itself sends, in the server's buckets."""

    def __init__(self) -> None:
        """Nothing counted yet."""
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """One command sent."""
        self.counts[_BUCKET.get(event.command_name, "command")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to do."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to do."""


@dataclass(frozen=True, slots=True)
class OpSnapshot:
    """The server's counters and the bench's own commands at one moment."""

    ops: dict[str, int]
    documents: dict[str, int] | None
    own: dict[str, int] = field(default_factory=dict)


async def snapshot(client: AsyncMongoClient[Doc], own: OwnCommands) -> OpSnapshot:
    """Read `serverStatus` through `client` (whose listener is `own`)."""
    status = await client.admin.command({"serverStatus": 1})
    counters = status.get("opcounters", {})
    document = status.get("metrics", {}).get("document")
    return OpSnapshot(
        ops={name: int(counters.get(name, 0)) for name in COUNTERS},
        documents=(
            {name: int(document.get(name, 0)) for name in DOCUMENT_COUNTERS}
            if isinstance(document, dict)
            else None
        ),
        own=dict(own.counts),
    )


def per_notification(before: OpSnapshot, after: OpSnapshot, *, delivered: int) -> dict[str, Any]:
    """Commands (and documents, when the server counts them) per delivered notification."""
    per = max(1, delivered)
    ops = {
        name: max(
            0,
            after.ops[name] - before.ops[name] - (after.own.get(name, 0) - before.own.get(name, 0)),
        )
        for name in COUNTERS
    }
    total = sum(ops.values())
    figures: dict[str, Any] = {
        "delivered": delivered,
        "commands": ops,
        "commands_total": total,
        "commands_per_notification": round(total / per, 3),
        "by_counter_per_notification": {k: round(v / per, 3) for k, v in ops.items()},
        "documents_per_notification": None,
    }
    if before.documents is not None and after.documents is not None:
        docs = {k: after.documents[k] - before.documents[k] for k in DOCUMENT_COUNTERS}
        figures["documents"] = docs
        figures["documents_per_notification"] = {k: round(v / per, 3) for k, v in docs.items()}
    return figures
