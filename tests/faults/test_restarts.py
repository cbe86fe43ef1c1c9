"""RabbitMQ and the MongoDB server restarted under a stream of requests.

Every request is answered 200 or 503 (never a hang, never a 500), and every 200 ends
DELIVERED exactly once: the processes reconnect by themselves and the consumers come back.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, run_command, send_stream
from tests.faults.steps import (
    SEND,
    all_records,
    email_body,
    provider_calls,
    setup_email,
    wait_all_delivered,
)
from tests.support import EmbeddedMongo

pytestmark = pytest.mark.timeout(240)


async def _stream_through(
    system: ProcessSystem,
    sendgrid: FakeSendGrid,
    *,
    requests: int,
    per_second: float,
    outage_after: int,
    outage: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """Send `requests` at a steady rate, run `outage` once `outage_after` are answered."""
    async with system.client(timeout_s=30) as client:
        await setup_email(client, sendgrid)
        bodies = [email_body(f"m{i}") for i in range(requests)]
        started = time.monotonic()
        lanes = 16
        under_way = asyncio.Event()

        async def paced() -> list[tuple[int, dict[str, Any]]]:
            results: list[tuple[int, dict[str, Any]]] = []
            for offset in range(0, requests, lanes):
                due = started + offset / per_second
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # the pace, not a wait
                results += await send_stream(
                    client, bodies[offset : offset + lanes], concurrency=lanes, path=SEND
                )
                if len(results) >= outage_after:
                    under_way.set()
            return results

        async def fault() -> None:
            await under_way.wait()
            await outage()

        results, _ = await asyncio.gather(paced(), fault())
    statuses = [status for status, _ in results]
    return {
        "results": results,
        "ok": statuses.count(200),
        "unavailable": statuses.count(503),
        "other": [s for s in statuses if s not in (200, 503)],
        "ok_after_outage": statuses[-lanes:].count(200),
    }


async def _settle_and_count(
    system: ProcessSystem,
    sendgrid: FakeSendGrid,
    stream: dict[str, Any],
    fault_report: Callable[..., None],
) -> None:
    async with system.open_database() as db:
        accepted = {body["transactionId"] for status, body in stream["results"] if status == 200}
        records = await all_records(db)
        ok_records = {d["_id"] for d in records if d["transaction_id"] in accepted}
        delivered = await wait_all_delivered(db, ok_records, timeout_s=90)
        await system.wait_queues_drained()  # nothing left that could send a late duplicate
        calls = provider_calls(sendgrid)
        refused = {d["_id"] for d in records} - ok_records
        fault_report(
            requests_sent=len(stream["results"]),
            answered_200=stream["ok"],
            answered_503=stream["unavailable"],
            answered_other=len(stream["other"]),
            records_delivered=len(delivered),
            provider_calls=sum(calls.values()),
            delivered_twice=sum(1 for i in ok_records if calls[i] > 1),
            answered_503_but_delivered=sum(1 for i in refused if calls[i]),
        )
        assert stream["other"] == []
        assert stream["ok"] + stream["unavailable"] == len(stream["results"])
        assert stream["unavailable"] > 0, "the outage was not felt: nothing was tested"
        assert stream["ok_after_outage"] > 0, "the API did not recover"
        assert len(ok_records) == stream["ok"]
        twice = sorted(i for i in ok_records if calls[i] > 1)
        assert twice == [], f"delivered more than once: {twice}"


def _local_rabbitmq(url: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not on PATH: cannot restart the broker")
    if urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("RABBITMQ_URL is not the local broker that rabbitmqctl controls")


async def test_rabbitmq_restart_during_a_stream_of_requests(
    rabbitmq_url: str,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    _local_rabbitmq(rabbitmq_url)
    system = make_system()
    system.start_worker("email")
    system.start_worker("maintenance")
    await system.start_api()

    async def restart_broker() -> None:
        try:
            await run_command("rabbitmqctl", "stop_app")
            await system.wait_api_sees_down("rabbitmq")
        finally:
            await run_command("rabbitmqctl", "start_app")

    stream = await _stream_through(
        system,
        sendgrid,
        requests=1000,
        per_second=50,
        outage_after=150,
        outage=restart_broker,
    )
    await _settle_and_count(system, sendgrid, stream, fault_report)


async def test_mongodb_restart_during_a_stream_of_requests(
    tmp_path: Path,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    # Its own server with on-disk storage, so a restart keeps the data.
    mongo = EmbeddedMongo(storage_path=str(tmp_path / "mongo"))
    mongo.start()
    try:
        system = make_system(mongodb=mongo.url)
        system.start_worker("email")
        system.start_worker("maintenance")
        await system.start_api()

        async def restart_database() -> None:
            await asyncio.to_thread(mongo.stop)
            try:
                await system.wait_api_sees_down("mongodb")
            finally:
                await asyncio.to_thread(mongo.start)

        stream = await _stream_through(
            system,
            sendgrid,
            requests=400,
            per_second=40,
            outage_after=150,
            outage=restart_database,
        )
        await _settle_and_count(system, sendgrid, stream, fault_report)
    finally:
        for proc in list(system.procs.values()):
            proc.stop()
        mongo.stop()
