"""RabbitMQ and the MongoDB server restarted under a stream of requests.

Every request is answered 200 or 503 (never a hang, never a 500), and every 200 ends
DELIVERED exactly once: the processes reconnect by themselves and the consumers come back.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, run_command
from tests.faults.streams import settle_and_count, stream_through
from tests.support import EmbeddedMongo

pytestmark = pytest.mark.timeout(240)


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
    """RabbitMQ restart (stop_app, start_app) under a paced load."""
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

    stream = await stream_through(
        system,
        sendgrid,
        requests=1000,
        per_second=50,
        outage_after=150,
        outage=restart_broker,
    )
    await settle_and_count(system, sendgrid, stream, fault_report)
    assert stream.unavailable > 0, "the outage was not felt: nothing was tested"


async def test_mongodb_restart_during_a_stream_of_requests(
    tmp_path: Path,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """MongoDB server restart under a paced load."""
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

        stream = await stream_through(
            system,
            sendgrid,
            requests=400,
            per_second=40,
            outage_after=150,
            outage=restart_database,
        )
        await settle_and_count(system, sendgrid, stream, fault_report)
        assert stream.unavailable > 0, "the outage was not felt: nothing was tested"
    finally:
        for proc in list(system.procs.values()):
            proc.stop()
        mongo.stop()
