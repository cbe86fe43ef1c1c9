"""The delay phase: N `manage/send-delayed` with delays spread over 1-10 s, and how late each
was claimed (claim time - due time: `processing_at - deliver_at`, from the records).

The delay levels hold a message whole seconds; a claim before its due time is refused and the
message parked again, so lateness is never negative by design (the minimum shows it). Target
from the issue: p99 < 1 s, reported, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table

from benchkit.load import LoadGenerator
from benchkit.records import percentiles, wait_until

PATH = "/api/v1/notifications/manage/send-delayed"
SPREAD_S = (1, 10)
TARGET_P99_MS = 1000.0
_CHUNK = 500

Doc = dict[str, Any]


def delay_of(i: int) -> int:
    """Delays cycle through 1..10 s, so every level combination of the delay bits is used."""
    low, high = SPREAD_S
    return low + i % (high - low + 1)


async def _records(url: str, database: str, tenant_id: str, txns: Sequence[str]) -> list[Doc]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(url, tz_aware=True)
    try:
        col = client[database]["notifications"]
        docs: list[Doc] = []
        for i in range(0, len(txns), _CHUNK):
            cursor = col.find(
                {"tenant_id": tenant_id, "transaction_id": {"$in": list(txns[i : i + _CHUNK])}},
                {"status": 1, "deliver_at": 1, "processing_at": 1, "sweeps": 1},
            )
            docs += [d async for d in cursor]
        return docs
    finally:
        await client.close()


async def measure_delay(
    gen: LoadGenerator,
    *,
    mongodb_url: str,
    database: str,
    tenant_id: str,
    users: Sequence[str],
    sends: int,
    concurrency: int,
    say: Any,
) -> dict[str, Any]:
    """Send, wait until every record is final (at most the longest delay plus a margin), read
    the lateness of each claim from the records."""
    say(f"delay: {sends} x POST {PATH}, delays {SPREAD_S[0]}-{SPREAD_S[1]} s, c={concurrency}")
    started = time.perf_counter()
    load = await gen.burst(
        path=PATH,
        body_for=lambda i: {
            "userId": users[i % len(users)],
            "channel": "EMAIL",
            "content": {"subject": "Later", "body": f"Delayed {i}."},
            "delaySeconds": delay_of(i),
        },
        count=sends,
        concurrency=concurrency,
    )
    txns = [str(a["transactionId"]) for a in load.answers]

    async def final() -> bool:
        docs = await _records(mongodb_url, database, tenant_id, txns)
        return sum(1 for d in docs if d.get("status") == "DELIVERED") >= len(txns)

    await wait_until(final, timeout_s=SPREAD_S[1] + 30.0, every_s=0.5)
    docs = await _records(mongodb_url, database, tenant_id, txns)
    late_ms = [
        (d["processing_at"] - d["deliver_at"]).total_seconds() * 1000
        for d in docs
        if d.get("processing_at") and d.get("deliver_at")
    ]
    lateness = percentiles(late_ms)
    say(
        f"delay: {len(late_ms)}/{sends} claimed in {time.perf_counter() - started:.1f} s, "
        f"late p50 {lateness['p50']} ms, p99 {lateness['p99']} ms, max {lateness['max']} ms"
    )
    return {
        "path": PATH,
        "sends": sends,
        "accepted": load.accepted,
        "errors": dict(load.errors),
        "delays_s": list(SPREAD_S),
        "claimed": len(late_ms),
        "delivered": sum(1 for d in docs if d.get("status") == "DELIVERED"),
        "swept": sum(1 for d in docs if d.get("sweeps")),
        "lateness_ms": {**lateness, "min": round(min(late_ms), 1) if late_ms else 0.0},
        "lateness_basis": "processing_at (the worker's claim) - deliver_at (due), per record",
        "target_p99_ms": TARGET_P99_MS,
        "target_met": bool(late_ms) and lateness["p99"] < TARGET_P99_MS,
    }


def render_delay(figures: dict[str, Any], console: Console) -> None:
    """One table for the delay phase."""
    late = figures["lateness_ms"]
    table = Table(title="delay phase: how late delayed sends were claimed")
    for column in ("sends", "claimed", "p50 ms", "p99 ms", "max ms", "min ms", "p99 < 1 s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(figures["sends"]),
        str(figures["claimed"]),
        str(late["p50"]),
        str(late["p99"]),
        str(late["max"]),
        str(late["min"]),
        "yes" if figures["target_met"] else "no",
    )
    console.print(table)
