"""Outages answer 503 with a reason, never a hang or a bare 500; readiness names what is down."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import aio_pika
import httpx

from shared.domain import Channel
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.integration.helpers import ok_rpc
from tests.support import EmbeddedMongo, System, TcpProxy, wait_for


async def test_database_outage_gives_503_and_readiness_says_mongodb(settings: Settings) -> None:
    mongo = EmbeddedMongo()
    mongo.start()
    sut = System(settings.model_copy(update={"mongodb_url": mongo.url, "mongo_timeout_ms": 800}))
    try:
        await sut.start([])
        tenant = await sut.new_tenant()
        ready = await tenant.client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"rabbitmq": "ok", "mongodb": "ok"}
        await ok_rpc(tenant, "manage/list-subscribers", {})  # the key is now known and cached

        mongo.stop()
        ready = await tenant.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["mongodb"]
        started = time.monotonic()
        response = await tenant.client.post(
            "/api/v1/notifications/manage/send",
            json={"userId": "u", "channel": "IN_APP", "content": {"body": "x"}},
        )
        assert response.status_code == 503
        assert response.json()["success"] is False
        assert response.json()["error"][0].startswith("database unavailable")
        assert response.headers["retry-after"] == "5"
        assert time.monotonic() - started < 10  # bounded by the server-selection timeout
        await tenant.client.aclose()
    finally:
        await sut.stop()
        mongo.stop()


async def test_broker_outage_gives_503_discards_the_record_and_recovers(
    settings: Settings, system: System
) -> None:
    target = urlparse(settings.rabbitmq_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    url = settings.rabbitmq_url.replace(
        f"{target.hostname}:{target.port or 5672}", f"127.0.0.1:{proxy.port}"
    )
    if url == settings.rabbitmq_url:  # URL without an explicit port
        url = settings.rabbitmq_url.replace(f"@{target.hostname}/", f"@127.0.0.1:{proxy.port}/")
    sut = System(settings.model_copy(update={"rabbitmq_url": url, "publish_timeout_s": 2}))
    try:
        await sut.start([])
        tenant = await sut.new_tenant()
        body = {
            "userId": "u",
            "channel": "IN_APP",
            "content": {"body": "x"},
            "idempotencyKey": "k1",
        }

        await proxy.cut()
        started = time.monotonic()
        response = await tenant.client.post("/api/v1/notifications/manage/send", json=body)
        assert response.status_code == 503, response.text
        assert "publish" in response.json()["error"][0] or "broker" in response.json()["error"][0]
        assert time.monotonic() - started < 10
        ready = await tenant.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["rabbitmq"]
        assert sut.db is not None
        # A 503 means the request did not happen: its record is gone, so neither the sweep
        # sends it behind the caller's back nor does the idempotency key hold a dead answer.
        kept = [d async for d in sut.db.notifications.col.find({"tenant_id": tenant.tenant_id})]
        assert kept == []

        await proxy.start()

        async def accepted() -> httpx.Response | None:
            again = await tenant.client.post("/api/v1/notifications/manage/send", json=body)
            return again if again.status_code == 200 else None

        # The client retries with the same key once the API has reconnected by itself.
        again = await wait_for(accepted, timeout_s=30, what="the API to reconnect to RabbitMQ")
        [published] = [
            d async for d in sut.db.notifications.col.find({"tenant_id": tenant.tenant_id})
        ]
        # Published and confirmed: its message waits in the channel's queue, or a worker of
        # the prefix (if the session's system runs) took it and claims it.
        queue_name = Topology(settings.prefix).queue(Channel.IN_APP)
        db = sut.db

        async def published_somewhere() -> bool:
            record = await db.notifications.col.find_one({"_id": published["_id"]})
            if record is not None and record["status"] != "QUEUED":
                return True
            async with await aio_pika.connect(settings.rabbitmq_url) as connection:
                channel = await connection.channel()
                queue = await channel.declare_queue(queue_name, passive=True)
                return (queue.declaration_result.message_count or 0) >= 1

        await wait_for(published_somewhere, timeout_s=10, what="the retried send's message")
        assert again.json()["transactionId"] == published["transaction_id"]
        repeat = await tenant.client.post("/api/v1/notifications/manage/send", json=body)
        assert repeat.json()["transactionId"] == published["transaction_id"]
        await tenant.client.aclose()
    finally:
        await sut.stop()
        await proxy.cut()
