"""The topic phase and the fan-out memory mode.

Topic phase: a topic of N subscribers (loaded straight into the database through the
repositories, timed apart), one `manage/send-to-topic` by e-mail, then recipients delivered
per second end to end (first record created to last delivered) as a ratio of the run's
ceiling, and the time from the request to the first and to the last delivery.

Fan-out memory (`scripts/bench --fanout-memory`): a fan-out worker alone (`python -m workers
fanout`, a fresh process per size) expands a topic of 10k, then 100k subscribers (the records
it makes are stored and published; no channel worker consumes them); its peak RSS is the
kernel's high-water mark (`VmHWM`), read when the fan-out is DONE. Flat within 10 % means the
audience is never held in memory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchkit import dbops
from benchkit.load import LoadGenerator
from benchkit.records import RecordReader, end_to_end, wait_until
from shared.db.base import utcnow
from shared.db.client import Database, connect_database
from shared.ids import new_id
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.pipeline import SendPipeline
from tests.support import delete_broker_objects

PATH = "/api/v1/notifications/manage/send-to-topic"
TOPIC = "bench-topic"
_CHUNK = 1000

Doc = dict[str, Any]


async def load_topic(db: Database, *, tenant_id: str, topic_id: str, users: int) -> float:
    """N subscribers with an e-mail address, each subscribed to the topic; seconds it took."""
    started = time.perf_counter()
    now = utcnow()
    for start in range(0, users, _CHUNK):
        ids = [f"topic-user-{i:07d}" for i in range(start, min(start + _CHUNK, users))]
        await db.subscribers.col.insert_many(
            [
                {
                    "tenant_id": tenant_id,
                    "subscriber_id": s,
                    "email": f"{s}@example.com",
                    "devices": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for s in ids
            ],
            ordered=False,
        )
        first = await db.topics.reserve_seq(tenant_id=tenant_id, topic_id=topic_id, count=len(ids))
        assert first is not None
        await db.topic_subscriptions.add(
            tenant_id=tenant_id, topic_id=topic_id, first_seq=first, subscriber_ids=ids
        )
    return time.perf_counter() - started


async def measure_topic(
    gen: LoadGenerator,
    reader: RecordReader,
    *,
    mongodb_url: str,
    database: str,
    tenant_id: str,
    subscribers: int,
    ceiling_per_s: float,
    provider_accepted: Callable[[], Any],
    timeout_s: float,
    say: Any,
) -> dict[str, Any]:
    """Load the topic, send to it once, wait until every recipient's record is final."""
    status, body = await gen.call(f"{PATH.rsplit('/', 1)[0]}/create-topic", {"topicKey": TOPIC})
    if status != 200:
        raise RuntimeError(f"create-topic: HTTP {status} {body}")
    db = connect_database(url=mongodb_url, name=database, timeout_ms=10_000)
    try:
        topic = await db.topics.get(tenant_id=tenant_id, key=TOPIC)
        assert topic is not None
        say(f"topic: loading {subscribers} subscribers")
        load_s = await load_topic(db, tenant_id=tenant_id, topic_id=topic["_id"], users=subscribers)
        say(f"topic: loaded in {load_s:.1f} s; one POST {PATH}")
        accepted_before = await provider_accepted()
        ops_before = await dbops.snapshot(reader.client, reader.own)
        started = time.perf_counter()
        status, answer = await gen.call(
            PATH,
            {
                "topicKey": TOPIC,
                "channel": "EMAIL",
                "category": "PRODUCT",
                "content": {"subject": "Weekly", "body": "This week's summary."},
            },
        )
        if status != 200:
            raise RuntimeError(f"send-to-topic: HTTP {status} {answer}")
        answered_ms = (time.perf_counter() - started) * 1000
        txn = str(answer["transactionId"])
        polls = 0

        async def done() -> bool:
            nonlocal polls
            polls += 1
            if await provider_accepted() >= accepted_before + subscribers:
                return await reader.count_final([txn]) >= subscribers
            return polls % 25 == 0 and await reader.count_final([txn]) >= subscribers

        finished = await wait_until(done, timeout_s=timeout_s, every_s=0.2)
        phase_s = time.perf_counter() - started
        ops_after = await dbops.snapshot(reader.client, reader.own)
        fanout = await db.fanouts.get(tenant_id=tenant_id, fanout_id=txn) or {}
    finally:
        await db.close()
    docs = await reader.fetch([txn])
    e2e = end_to_end(docs)
    delivered = [d["completed_at"] for d in docs if d.get("status") == "DELIVERED"]
    sent_at = fanout.get("created_at")
    first_s = (min(delivered) - sent_at).total_seconds() if delivered and sent_at else None
    last_s = (max(delivered) - sent_at).total_seconds() if delivered and sent_at else None
    fanout_s = (
        (fanout["completed_at"] - sent_at).total_seconds()
        if fanout.get("completed_at") and sent_at
        else None
    )
    per_s = float(e2e.get("per_s", 0.0))
    say(
        f"topic: {e2e['delivered']}/{subscribers} delivered in {phase_s:.1f} s "
        f"({per_s:,.0f}/s; first after {first_s} s, last after {last_s} s)"
    )
    return {
        "subscribers": subscribers,
        "load_s": round(load_s, 2),
        "answered_ms": round(answered_ms, 1),
        "delivered": e2e["delivered"],
        "all_final": finished,
        "statuses": e2e["statuses"],
        "per_s": round(per_s, 1),
        "ratio_of_ceiling": round(per_s / ceiling_per_s, 4) if ceiling_per_s else 0.0,
        "first_delivery_s": round(first_s, 3) if first_s is not None else None,
        "last_delivery_s": round(last_s, 3) if last_s is not None else None,
        "fanout_s": round(fanout_s, 3) if fanout_s is not None else None,
        "fanout_batches": fanout.get("batches"),
        "latency_ms": e2e.get("latency_ms"),
        "database": dbops.per_notification(ops_before, ops_after, delivered=e2e["delivered"]),
    }


def render_topic(topic: dict[str, Any], console: Console) -> None:
    """The topic phase as a table."""
    if topic.get("skipped"):
        console.print(f"topic phase skipped ({topic['skipped']})")
        return
    table = Table(title=f"Topic send: {topic['subscribers']:,} subscribers, one request")
    for column in ("figure", "value"):
        table.add_column(column)
    for label, value in (
        ("loading the topic (s)", topic["load_s"]),
        ("send-to-topic answered (ms)", topic["answered_ms"]),
        ("delivered", f"{topic['delivered']:,}"),
        ("recipients delivered/s", f"{topic['per_s']:,.0f}"),
        ("ratio of ceiling", f"{topic['ratio_of_ceiling']:.1%}"),
        ("first delivery after (s)", topic["first_delivery_s"]),
        ("last delivery after (s)", topic["last_delivery_s"]),
        ("fan-out done after (s)", topic["fanout_s"]),
    ):
        table.add_row(label, str(value))
    console.print(table)


# --- fan-out memory --------------------------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc (Linux only)")


async def _one_size(
    *,
    rabbitmq_url: str,
    mongodb_url: str,
    drop_database: bool,
    root: Path,
    size: int,
    log: Path,
    say: Any,
) -> dict[str, Any]:
    prefix = f"fanmem{secrets.token_hex(3)}"
    database = prefix
    tenant = "bench"
    db = connect_database(url=mongodb_url, name=database, timeout_ms=10_000)
    broker = Broker(url=rabbitmq_url, topology=Topology(prefix), publish_timeout_s=10)
    worker: asyncio.subprocess.Process | None = None
    try:
        await db.ensure_indexes()
        await broker.connect()
        topic = await db.topics.create(tenant_id=tenant, key="memory", name=None)
        say(f"fanout-memory: loading {size:,} subscriptions")
        load_s = await load_topic(db, tenant_id=tenant, topic_id=topic["_id"], users=size)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")},
            "NOTIFY_PREFIX": prefix,
            "RABBITMQ_URL": rabbitmq_url,
            "MONGODB_URL": mongodb_url,
            "NOTIFY_METRICS_PORT": "0",
            "NOTIFY_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(root),
        }
        with log.open("ab") as out:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers",
                "fanout",
                env=env,
                cwd=root,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        await asyncio.sleep(3)  # started and idle: its baseline
        idle_kb = _peak_rss_kb(worker.pid)
        now = utcnow()
        fanout: Doc = {
            "_id": new_id("txn"),
            "tenant_id": tenant,
            "kind": "topic",
            "topic_id": topic["_id"],
            "topic_key": "memory",
            "environment": "development",
            "exclude": [],
            "state": "PENDING",
            "recipients": 0,
            "excluded": 0,
            "batches": 0,
            "channel": "email",
            "category": "PRODUCT",
            "priority": 1,
            "content": {"subject": "Memory", "body": "A fan-out of many."},
            "created_at": now,
            "updated_at": now,
        }
        started = time.perf_counter()
        await SendPipeline(db=db, broker=broker).submit_fanout(fanout)

        async def done() -> bool:
            if worker is not None and worker.returncode is not None:
                raise RuntimeError(f"the fan-out worker exited ({worker.returncode}); see {log}")
            doc = await db.fanouts.get(tenant_id=tenant, fanout_id=fanout["_id"])
            return doc is not None and doc["state"] == "DONE"

        if not await wait_until(done, timeout_s=max(120.0, size / 100), every_s=0.5):
            raise RuntimeError(f"the fan-out of {size} did not finish")
        fanout_s = time.perf_counter() - started
        peak_kb = _peak_rss_kb(worker.pid)
        say(f"fanout-memory: {size:,} in {fanout_s:.1f} s, peak RSS {peak_kb / 1024:.1f} MiB")
        return {
            "subscribers": size,
            "load_s": round(load_s, 1),
            "fanout_s": round(fanout_s, 1),
            "recipients_per_s": round(size / fanout_s, 1),
            "idle_rss_mib": round(idle_kb / 1024, 1),
            "peak_rss_mib": round(peak_kb / 1024, 1),
        }
    finally:
        if worker is not None and worker.returncode is None:
            worker.terminate()
            try:
                await asyncio.wait_for(worker.wait(), timeout=20)
            except TimeoutError:
                worker.kill()
        await broker.close()
        try:
            # A throw-away server's data goes with its directory; a given one is cleaned.
            if drop_database:
                await db.client.drop_database(database)
            await delete_broker_objects(rabbitmq_url, Topology(prefix))
        except Exception as exc:  # the figures matter more than a slow clean-up
            say(f"fanout-memory: clean-up of {prefix} failed: {exc!r}")
        await db.close()


async def measure_fanout_memory(
    *,
    rabbitmq_url: str,
    mongodb_url: str,
    drop_database: bool,
    root: Path,
    sizes: list[int],
    log: Path,
    say: Any,
) -> dict[str, Any]:
    """Peak RSS of a fresh fan-out worker per size, and how flat it stays."""
    runs = [
        await _one_size(
            rabbitmq_url=rabbitmq_url,
            mongodb_url=mongodb_url,
            drop_database=drop_database,
            root=root,
            size=size,
            log=log,
            say=say,
        )
        for size in sizes
    ]
    peaks = [r["peak_rss_mib"] for r in runs]
    growth = (max(peaks) - min(peaks)) / min(peaks) if peaks else 0.0
    return {
        "runs": runs,
        "peak_growth": round(growth, 4),
        "flat_within_10_percent": growth <= 0.10,
        "method": "VmHWM of a fresh `python -m workers fanout` per size, read when DONE",
    }


def render_fanout_memory(report: dict[str, Any], console: Console) -> None:
    """The fan-out memory runs as a table."""
    table = Table(title="Fan-out worker memory (peak RSS per topic size)")
    for column in (
        "subscribers",
        "load (s)",
        "fan-out (s)",
        "recipients/s",
        "idle MiB",
        "peak MiB",
    ):
        table.add_column(column, justify="right")
    for r in report["runs"]:
        table.add_row(
            f"{r['subscribers']:,}",
            str(r["load_s"]),
            str(r["fanout_s"]),
            f"{r['recipients_per_s']:,.0f}",
            str(r["idle_rss_mib"]),
            str(r["peak_rss_mib"]),
        )
    console.print(table)
    console.print(
        f"peak growth {report['peak_growth']:.1%} "
        f"({'flat' if report['flat_within_10_percent'] else 'NOT flat'} within 10 %)"
    )
