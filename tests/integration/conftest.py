"""Integration tests: every test here talks to the real broker and database server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import pytest

from shared.db.client import Database
from shared.dlq.ops import DeadLetters
from shared.domain import Channel
from shared.messaging.topology import Topology, declare_topology
from shared.settings import Settings
from tests.fakes.apns import FakeApns
from tests.fakes.discord import FakeDiscord
from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.ses import FakeSes
from tests.fakes.slack import FakeSlack
from tests.fakes.twilio import FakeTwilio
from tests.integration.dead_letter_support import DeadLetterWriter
from tests.support import System, delete_broker_objects


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration."""
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    """A fake SendGrid on 127.0.0.1 for one test."""
    async with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    """A fake FCM (and OAuth token endpoint) on 127.0.0.1 for one test."""
    async with FakeFcm() as fake:
        yield fake


@pytest.fixture
async def apns() -> AsyncIterator[FakeApns]:
    """A fake APNs (HTTP/2, h2c) on 127.0.0.1 for one test."""
    async with FakeApns() as fake:
        yield fake


@pytest.fixture
async def ses() -> AsyncIterator[FakeSes]:
    """A fake SES v2 on 127.0.0.1 for one test."""
    async with FakeSes() as fake:
        yield fake


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    """A fake Twilio on 127.0.0.1 for one test."""
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A fake Slack on 127.0.0.1 for one test."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    """A fake Discord on 127.0.0.1 for one test."""
    async with FakeDiscord() as fake:
        yield fake


@dataclass
class DeadLetterLab:
    """DLQs of a prefix of their own (so a test may drain them) and the ops working on them."""

    url: str
    topology: Topology
    db: Database
    writer: DeadLetterWriter
    ops: DeadLetters


@pytest.fixture(scope="module")
async def _dlq_lab_module(system: System, settings: Settings) -> AsyncIterator[DeadLetterLab]:
    """Declared once per module (a whole topology takes a second or so)."""
    topology = Topology(f"{settings.prefix}-lab{secrets.token_hex(3)}")
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        await declare_topology(await connection.channel(), topology)
    assert system.db is not None
    try:
        async with DeadLetterWriter(
            url=settings.rabbitmq_url, topology=topology, db=system.db
        ) as writer:
            yield DeadLetterLab(
                url=settings.rabbitmq_url,
                topology=topology,
                db=system.db,
                writer=writer,
                ops=DeadLetters(
                    db=system.db, amqp_url=settings.rabbitmq_url, topology=topology, timeout_s=5
                ),
            )
    finally:
        await delete_broker_objects(settings.rabbitmq_url, topology)


@pytest.fixture
async def dlq_lab(_dlq_lab_module: DeadLetterLab) -> DeadLetterLab:
    """A private topology (declared like the real one), its DLQs and work queues empty."""
    lab = _dlq_lab_module
    connection = await aio_pika.connect(lab.url)
    async with connection:
        channel = await connection.channel()
        for name in [lab.topology.dlq(c) for c in Channel] + [
            lab.topology.queue(c) for c in Channel
        ]:
            await (await channel.get_queue(name, ensure=False)).purge()
    return lab


@pytest.fixture
async def dlq_writer(system: System, settings: Settings) -> AsyncIterator[DeadLetterWriter]:
    """Puts dead letters on the running system's own DLQs (its workers see the replays)."""
    assert system.db is not None
    async with DeadLetterWriter(
        url=settings.rabbitmq_url, topology=Topology(settings.prefix), db=system.db
    ) as writer:
        yield writer
