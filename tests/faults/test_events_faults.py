"""kill -9 of the `events` worker: mid webhook delivery (each webhook delivered at least once,
every attempt recorded) and mid receipt application (each receipt applied exactly once)."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from shared.db.base import Doc
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.fakes.webhook_sink import WebhookSink
from tests.faults.harness import ProcessSystem, kill9, send_stream
from tests.faults.steps import TENANT, all_records, email_body, setup_email, wait_all_delivered
from tests.integration.test_receipts import SendGridSigner
from tests.support import wait_for

pytestmark = pytest.mark.timeout(240)

EVENTS_ENV = {
    "NOTIFY_WEBHOOK_RETRY_DELAYS_S": "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
    "NOTIFY_WEBHOOK_TIMEOUT_S": "2",
    "NOTIFY_WEBHOOK_DISABLE_AFTER_S": "600",
    "NOTIFY_WEBHOOK_CIRCUIT_COOLDOWN_S": "1",
    "NOTIFY_WEBHOOKS_CACHE_TTL_S": "0",
}


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """The tenant's webhook endpoint."""
    async with WebhookSink() as fake:
        yield fake


async def test_events_worker_killed_mid_webhook_delivery_delivers_each_at_least_once(
    make_system: Callable[..., ProcessSystem],
    fault_report: Callable[..., None],
    sendgrid: FakeSendGrid,
    sink: WebhookSink,
) -> None:
    """kill -9 of the events worker while webhook calls are in flight."""
    sends = 40
    system = make_system(**EVENTS_ENV)
    system.start_worker("email")
    first = system.start_worker("events", name="worker-events-1", NOTIFY_EVENTS_PREFETCH="8")
    await system.start_api()
    async with system.open_database() as db, system.client() as client:
        await setup_email(client, sendgrid)
        created = await client.post(
            "/api/v1/notifications/manage/create-webhook",
            json={"url": sink.hook_url, "events": ["notification.delivered"]},
        )
        assert created.status_code == 200, created.text
        sink.hold()  # calls hang: the kill lands while some are in flight
        answers = await send_stream(
            client, [email_body(f"m{i}") for i in range(sends)], concurrency=8
        )
        assert [status for status, _ in answers] == [200] * sends
        await sink.wait_for_requests(3, timeout_s=30)
        kill9(first)
        assert await first.wait_exit(10) == -signal.SIGKILL
        cut_off = len(sink.requests)
        sink.release()
        system.start_worker("events", name="worker-events-2")

        records = await wait_all_delivered(
            db, {d["_id"] for d in await all_records(db)}, timeout_s=60
        )
        expected = {f"{r['_id']}:notification.delivered" for r in records}

        async def all_delivered() -> list[Doc] | None:
            docs = [d async for d in db.webhook_deliveries.col.find({"tenant_id": TENANT})]
            done = [d for d in docs if d["status"] == "DELIVERED"]
            return docs if len(done) == sends else None

        deliveries = await wait_for(all_delivered, timeout_s=90, what="every webhook delivered")
        received = Counter(r.headers["webhook-id"] for r in sink.requests)
        attempts = [a for d in deliveries for a in d["attempts"]]
        interrupted = sum(a["outcome"] == "interrupted" for a in attempts)
        fault_report(
            requests=sends,
            acknowledged=sends,
            delivered=len(set(received) & expected),
            lost=len(expected - set(received)),
            unexpected=len(set(received) - expected),
            duplicated=sum(1 for n in received.values() if n > 1),
            in_flight_at_kill=cut_off,
            attempts=len(attempts),
            interrupted=interrupted,
        )
        assert set(received) == expected  # each at least once, nothing unexpected
        for d in deliveries:
            numbers = [a["n"] for a in d["attempts"]]
            assert numbers == list(range(1, len(numbers) + 1)), d["_id"]  # every attempt, once
            assert d["attempts"][-1]["outcome"] == "delivered"
            assert "calling" not in d
        # Each call the endpoint saw is an attempt on record (a cut-off one as interrupted).
        assert len(sink.requests) <= len(attempts)
        assert interrupted >= 1


async def test_events_worker_killed_mid_receipts_applies_each_exactly_once(
    make_system: Callable[..., ProcessSystem],
    fault_report: Callable[..., None],
    sendgrid: FakeSendGrid,
) -> None:
    """kill -9 of the events worker while it applies receipts."""
    sends = 40
    signer = SendGridSigner()
    system = make_system(**EVENTS_ENV)
    system.start_worker("email")
    first = system.start_worker("events", name="worker-events-1", NOTIFY_EVENTS_PREFETCH="2")
    await system.start_api()
    async with system.open_database() as db, system.client() as client:
        configured = await client.post(
            "/api/v1/notifications/manage/configure-provider",
            json={
                "providerType": "SENDGRID",
                "credentials": {
                    "apiKey": DEFAULT_API_KEY,
                    "fromEmail": "noreply@acme.test",
                    "webhookPublicKey": signer.public_key,
                },
                "endpoint": sendgrid.url,
            },
        )
        assert configured.status_code == 200, configured.text
        bodies = []
        for i in range(sends):
            user = f"r{i}"
            made = await client.post(
                "/api/v1/notifications/manage/create-subscriber",
                json={"userId": user, "subscriberData": {"email": f"{user}@example.com"}},
            )
            assert made.status_code == 200, made.text
            bodies.append({**email_body(user), "userId": user})
        answers = await send_stream(client, bodies, concurrency=8)
        assert [status for status, _ in answers] == [200] * sends
        records = await wait_all_delivered(
            db, {d["_id"] for d in await all_records(db)}, timeout_s=60
        )

        # Every message is delivered; every other one then bounces. Each event is posted
        # twice (SendGrid retries), in requests of their own.
        posts: list[bytes] = []
        for n, record in enumerate(records):
            events = [("delivered", f"d-{record['_id']}")]
            if n % 2:
                events.append(("bounce", f"b-{record['_id']}"))
            for kind, event_id in events:
                event = {
                    "email": f"{record['recipient']}@example.com",
                    "timestamp": int(time.time()),
                    "event": kind,
                    "type": "bounce",
                    "sg_event_id": event_id,
                    "sg_message_id": f"{record['provider_message_id']}.filter",
                    "notification_id": record["_id"],
                    "tenant_id": TENANT,
                }
                posts.append(json.dumps([event]).encode())
        async with httpx.AsyncClient(base_url=system.base_url, timeout=15) as hooks:

            async def post(body: bytes) -> None:
                answer = await hooks.post(
                    "/webhooks/sendgrid", content=body, headers=signer.headers(body)
                )
                assert answer.status_code == 200, answer.text

            for body in posts:
                await post(body)

            async def some_applied() -> bool:
                n = await db.receipts.count(tenant_id=TENANT, applied_at={"$exists": True})
                return n >= 5

            await wait_for(some_applied, timeout_s=30, what="the first receipts applied")
            kill9(first)
            assert await first.wait_exit(10) == -signal.SIGKILL
            applied_at_kill = await db.receipts.count(
                tenant_id=TENANT, applied_at={"$exists": True}
            )
            for body in posts:  # the retries
                await post(body)
        system.start_worker("events", name="worker-events-2")

        distinct = len(posts)

        async def all_applied() -> bool:
            n = await db.receipts.count(tenant_id=TENANT, applied_at={"$exists": True})
            return n == distinct

        await wait_for(all_applied, timeout_s=60, what="every receipt applied")
        assert await db.receipts.count(tenant_id=TENANT) == distinct
        after = [d async for d in db.notifications.col.find({"tenant_id": TENANT})]
        histories = [Counter(r["receipt_id"] for r in d.get("receipts", [])) for d in after]
        doubled = sum(1 for h in histories for n in h.values() if n > 1)
        bounced = [
            d
            for d in after
            if any(r["receipt_id"].startswith("SENDGRID:b-") for r in d.get("receipts", []))
        ]
        suppressed = await db.suppressions.col.count_documents({"tenant_id": TENANT})
        fault_report(
            requests=distinct,
            acknowledged=distinct,
            delivered=sum(len(h) for h in histories),
            lost=distinct - sum(len(h) for h in histories),
            duplicated=doubled,
            applied_at_kill=applied_at_kill,
            bounced=len(bounced),
            suppressed=suppressed,
        )
        assert doubled == 0
        assert sum(len(h) for h in histories) == distinct  # every receipt in a history, once
        assert len(bounced) == sends // 2
        assert all(d["status"] == "INVALID_CREDENTIAL" for d in bounced)
        assert suppressed == sends // 2
        assert sum(d["status"] == "DELIVERED" for d in after) == sends - sends // 2
