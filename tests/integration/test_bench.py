"""`scripts/bench --json` at a tiny size: the documented report, all delivered, nothing left.

No figure is asserted (this machine is shared and small): only that the bench runs the whole
system, that its JSON has the fields docs/benchmark.md documents, and that it cleans up after
itself.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from shared.domain import Channel
from shared.messaging.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--subscribers", "10",
    "--sends", "12",
    "--concurrency", "4",
    "--bulk-calls", "1",
    "--bulk-size", "10",
    "--bulk-concurrency", "1",
    "--ceiling-messages", "200",
    "--db-notifications", "6",
    "--drain-timeout", "20",
    "--inbox-sockets", "5",
    "--inbox-sends", "5",
    "--activity-records", "300",
    "--db-ceiling-documents", "200",
    "--topic-subscribers", "20",
]  # fmt: skip


def _keys(data: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in data]
    assert not missing, f"missing {missing} in {sorted(data)}"


@pytest.mark.timeout(120)
async def test_bench_quick_json_has_the_documented_fields(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "bench.log"
    proc = await asyncio.create_subprocess_exec(
        "scripts/bench",
        "--quick",
        "--json",
        "--log-file",
        str(log),
        *TINY,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RABBITMQ_URL": rabbitmq_url},
    )
    async with asyncio.timeout(110):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    report = json.loads(stdout)

    _keys(report, "version", "run", "ceiling", "single_sends", "end_to_end", "bulk", "stages")
    _keys(report, "database_alone", "pipeline_without_database", "targets")
    _keys(report["ceiling"], "publish_per_s", "consume_per_s", "publish_consume_per_s")
    assert report["ceiling"]["publish_consume_per_s"] > 0
    for name in ("api_v1_notifications", "manage_send"):
        single = report["single_sends"][name]
        _keys(
            single, "accepted_per_s", "latency_ms", "ratio_of_ceiling", "client_cpu_share_of_core"
        )
        _keys(single["latency_ms"], "p50", "p95", "p99")
        assert single["accepted"] == 12, single["errors"]
        e2e = report["end_to_end"][name]
        _keys(e2e, "per_s", "latency_ms", "ratio_of_ceiling", "stages_ms")
        assert e2e["delivered"] == 12, e2e["statuses"]
    bulk = report["bulk"]
    _keys(bulk, "recipients_delivered_per_s", "ratio_of_ceiling", "call_latency_ms")
    assert bulk["end_to_end"]["delivered"] == 10, bulk["end_to_end"]["statuses"]
    for phase in ("api_v1_notifications", "manage_send", "bulk"):
        stage = report["stages"][phase]
        _keys(stage, "latency_ms", "cpu", "bottleneck", "cpu_ms_per_notification")
        _keys(stage["latency_ms"], "broker", "worker_db", "provider")  # "api": only if stamped
        _keys(stage["cpu"], "api", "worker", "database", "broker", "provider", "load_generator")
    _keys(report["database_alone"]["send"], "per_s", "ops", "ratio_of_ceiling")
    ceiling = report["database_ceiling"]
    _keys(ceiling, "documents", "batch", "per_s", "opcounters", "commands_per_batch")
    assert ceiling["documents"] == 200
    _keys(report["tighter_ceiling"], "per_s", "which", "database_per_s")
    assert report["tighter_ceiling"]["which"] in ("broker", "database")
    _keys(bulk, "ratio_of_tighter_ceiling", "tighter_ceiling_basis")
    for phase in ("api_v1_notifications", "manage_send", "bulk"):
        db = report["stages"][phase]["database"]
        _keys(db, "commands", "commands_per_notification", "by_counter_per_notification")
        _keys(db["commands"], "insert", "query", "update", "delete", "getmore", "command")
        _keys(db, "documents_per_notification")  # None where the server does not count them
        assert db["commands_total"] > 0, db  # the system stored and delivered something
    inbox = report["inbox"]
    _keys(inbox, "write_to_socket_ms", "send_to_socket_ms", "api_memory_per_socket_kib")
    assert (inbox["sockets_open"], inbox["events_received"]) == (5, 5), inbox
    activity = report["activity"]
    _keys(
        activity, "history", "idle", "under_load", "pipeline_during", "goal_p99_lt_50_ms_under_load"
    )
    assert activity["history"]["records"] == 300
    for condition in ("idle", "under_load"):
        figures = activity[condition]
        assert figures["errors"] == {}, figures["errors"]
        assert figures["get_notification_activity"]["calls"] > 0
        assert figures["get_delivery_status"]["calls"] > 0
        _keys(figures["get_notification_activity"], "p50", "p99")
    assert activity["pipeline_during"]["accepted"] == 12

    topic = report["topic"]
    _keys(
        topic,
        "per_s",
        "ratio_of_ceiling",
        "first_delivery_s",
        "last_delivery_s",
        "load_s",
        "fanout_s",
    )
    assert (topic["subscribers"], topic["delivered"]) == (20, 20), topic["statuses"]
    assert topic["first_delivery_s"] <= topic["last_delivery_s"]
    _keys(topic, "ratio_of_tighter_ceiling", "database")
    _keys(topic["database"], "commands", "commands_per_notification")

    # Everything the run declared on the shared broker is gone.
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelClosed):
            await channel.declare_queue(
                Topology(report["run"]["prefix"]).queue(Channel.EMAIL), passive=True
            )


@pytest.mark.timeout(150)
async def test_bench_fanout_memory_reports_peak_rss_per_size(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        "scripts/bench",
        "--fanout-memory",
        "--fanout-memory-sizes",
        "30,60",
        "--json",
        "--log-file",
        str(tmp_path / "bench.log"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RABBITMQ_URL": rabbitmq_url},
    )
    async with asyncio.timeout(140):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    report = json.loads(stdout)
    _keys(report, "runs", "peak_growth", "flat_within_10_percent", "load_average_before")
    assert [r["subscribers"] for r in report["runs"]] == [30, 60]
    for run in report["runs"]:
        _keys(run, "load_s", "fanout_s", "idle_rss_mib", "peak_rss_mib", "recipients_per_s")
        assert run["peak_rss_mib"] >= run["idle_rss_mib"] > 0
