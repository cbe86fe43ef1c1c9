"""Session-wide real services: RabbitMQ, a MongoDB wire server, the API and the workers."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlparse

import pytest

from shared.domain import Channel
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.support import (
    EmbeddedMongo,
    System,
    Tenant,
    delete_broker_objects,
    drop_database,
    env,
    tcp_reachable,
)

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _docker_engine_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """RABBITMQ_URL, or the local broker; skipped on a laptop without one, failing in CI."""
    url = env("RABBITMQ_URL") or DEFAULT_RABBITMQ_URL
    parsed = urlparse(url)
    if not tcp_reachable(parsed.hostname or "127.0.0.1", parsed.port or 5672):
        message = f"RabbitMQ is not reachable at {parsed.hostname}:{parsed.port or 5672}"
        if env("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    """MONGODB_URL; else a real mongod via testcontainers where Docker runs; else SecantusDB."""
    given = env("MONGODB_URL")
    if given:
        yield given
        return
    if _docker_engine_available():
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:7") as container:
            yield container.get_connection_url()
        return
    server = EmbeddedMongo()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(rabbitmq_url: str, mongodb_url: str) -> Settings:
    """Settings for this run: a random prefix keeps it apart from anything else on the broker."""
    return Settings(
        environment="test",
        RABBITMQ_URL=rabbitmq_url,
        MONGODB_URL=mongodb_url,
        prefix=f"t{secrets.token_hex(5)}",
        secret_key=secrets.token_urlsafe(32),
        sandbox_default=False,
        dev_endpoints=True,
        worker_prefetch=50,
        publish_timeout_s=5,
        # Quick retries and circuits, so the reliability tests run in seconds.
        retry_max_attempts=3,
        retry_base_s=0.5,
        retry_max_backoff_s=2,
        circuit_failure_threshold=3,
        circuit_cooldown_s=3,
        outbox_grace_s=6,
        overdue_grace_s=1,
        # Small fan-out batches, so a topic of a few subscribers takes several.
        fanout_batch=3,
        fanout_lease_s=5,
        # Receipts and webhooks: the fake SNS serves its certificate locally; webhook retries
        # and disabling in seconds.
        sns_cert_url_pattern=r"^http://127\.0\.0\.1:\d+/",
        webhook_retry_delays_s=[1, 1, 1, 1, 1, 1, 1],
        webhook_disable_after_s=4,
        webhook_timeout_s=2,
        webhook_circuit_threshold=3,
        webhook_circuit_cooldown_s=2,
        webhooks_cache_ttl_s=0.5,
        log_level="WARNING",
        log_json=True,
        # In-process workers share one registry; a test that wants a metrics port sets one.
        metrics_port=0,
    )


@pytest.fixture(scope="session")
async def system(settings: Settings) -> AsyncIterator[System]:
    """The API and a worker per channel, started once for the whole session."""
    sut = System(settings)
    try:
        await sut.start(list(Channel), roles=("events", "fanout"))
        yield sut
    finally:
        await sut.stop()
        await delete_broker_objects(settings.rabbitmq_url, Topology(settings.prefix))
        await drop_database(settings.mongodb_url, settings.database_name)


@pytest.fixture
async def tenant(system: System) -> AsyncIterator[Tenant]:
    """A fresh tenant per test: tests share the system but never each other's data."""
    t = await system.new_tenant()
    try:
        yield t
    finally:
        await t.client.aclose()
