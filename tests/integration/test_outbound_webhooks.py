"""Outbound webhooks end to end: the RPCs, Standard Webhooks signatures, retries on 500,
disabling, every attempt recorded, and delivery never waiting for a hanging endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.fakes.server import RecordedRequest
from tests.fakes.webhook_sink import WebhookSink
from tests.integration.helpers import (
    configure,
    configure_sendgrid,
    ok_rpc,
    rpc,
    wait_final_status,
)
from tests.integration.test_receipts import EMAIL, SendGridSigner
from tests.support import System, Tenant, wait_for


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """A tenant's webhook endpoint on 127.0.0.1."""
    async with WebhookSink() as fake:
        yield fake


def verify_standard_webhook(secret: str, request: RecordedRequest) -> bool:
    """The receiver's check, from the Standard Webhooks spec (written apart from the signer)."""
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
        for part in request.headers["webhook-signature"].split()
    )


async def _create(tenant: Tenant, url: str, events: list[str]) -> dict[str, Any]:
    return await ok_rpc(
        tenant, "manage/create-webhook", {"url": url, "events": events, "description": "ours"}
    )


async def _send(tenant: Tenant, user: str = "u1") -> str:
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": user, "channel": "EMAIL", "content": {"title": "Hi", "body": "Hello"}},
    )
    return str(sent["transactionId"])


@pytest.fixture
async def email_tenant(tenant: Tenant, sendgrid: FakeSendGrid) -> Tenant:
    """A tenant delivering e-mail through a fake SendGrid, with subscribers u1..u3."""
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    for user in ("u1", "u2", "u3"):
        await ok_rpc(
            tenant,
            "manage/create-subscriber",
            {"userId": user, "subscriberData": {"email": f"{user}@example.com"}},
        )
    return tenant


async def _deliveries(tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    page = await ok_rpc(tenant, "manage/list-webhook-deliveries", {"webhookId": webhook_id})
    deliveries: list[dict[str, Any]] = page["deliveries"]
    return deliveries


async def test_delivered_event_is_signed_verifiably_and_recorded(
    email_tenant: Tenant, sink: WebhookSink
) -> None:
    tenant = email_tenant
    created = await _create(tenant, sink.hook_url, ["notification.delivered"])
    assert created["secret"].startswith("whsec_")
    txn = await _send(tenant)
    await wait_final_status(tenant, txn)

    [request] = await sink.wait_for_requests(1, timeout_s=10)
    assert verify_standard_webhook(created["secret"], request)
    assert not verify_standard_webhook("whsec_" + base64.b64encode(b"x" * 32).decode(), request)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    event = json.loads(request.body)
    assert event["type"] == "notification.delivered"
    assert event["data"]["transactionId"] == txn
    assert (event["data"]["result"], event["data"]["provider"]) == ("DELIVERED", "SENDGRID")
    assert (
        request.headers["webhook-id"] == f"{event['data']['notificationId']}:notification.delivered"
    )

    async def recorded() -> list[dict[str, Any]] | None:
        found = await _deliveries(tenant, created["webhookId"])
        return found if found and found[0]["status"] == "DELIVERED" else None

    [delivery] = await wait_for(recorded, timeout_s=10, what="the delivery recorded")
    assert [(a["attempt"], a["outcome"], a["statusCode"]) for a in delivery["attempts"]] == [
        (1, "delivered", 204)
    ]
    listed = await ok_rpc(tenant, "manage/list-webhooks", {})
    assert [w["webhookId"] for w in listed["webhooks"]] == [created["webhookId"]]
    assert "secret" not in json.dumps(listed)


async def test_only_subscribed_event_types_are_sent(
    email_tenant: Tenant, sink: WebhookSink, sendgrid: FakeSendGrid
) -> None:
    tenant = email_tenant
    await _create(tenant, sink.hook_url, ["notification.failed"])
    await wait_final_status(tenant, await _send(tenant))  # delivered: not subscribed
    sendgrid.script_error(400, "Does not contain a valid address.", field="x")
    await wait_final_status(tenant, await _send(tenant, "u2"))  # failed: subscribed
    [request] = await sink.wait_for_requests(1, timeout_s=10)
    event = json.loads(request.body)
    assert (event["type"], event["data"]["userId"], event["data"]["result"]) == (
        "notification.failed",
        "u2",
        "FAILED",
    )


async def test_retries_on_500_then_delivered_every_attempt_recorded(
    email_tenant: Tenant, sink: WebhookSink
) -> None:
    tenant = email_tenant
    created = await _create(tenant, sink.hook_url, ["notification.delivered"])
    sink.script(500, body="oops", times=2)
    await wait_final_status(tenant, await _send(tenant))

    requests = await sink.wait_for_requests(3, timeout_s=15)
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # one message, retried

    async def delivered() -> dict[str, Any] | None:
        [delivery] = await _deliveries(tenant, created["webhookId"])
        return delivery if delivery["status"] == "DELIVERED" else None

    delivery = await wait_for(delivered, timeout_s=10, what="the delivery to succeed")
    assert [(a["outcome"], a["statusCode"]) for a in delivery["attempts"]] == [
        ("failed", 500),
        ("failed", 500),
        ("delivered", 204),
    ]
    # The endpoint recovered: it is not counted as failing any more.
    [hook] = (await ok_rpc(tenant, "manage/list-webhooks", {}))["webhooks"]
    assert (hook["active"], hook["failingSince"]) == (True, None)


async def test_an_endpoint_failing_too_long_is_disabled(
    email_tenant: Tenant, sink: WebhookSink
) -> None:
    tenant = email_tenant
    created = await _create(tenant, sink.hook_url, ["notification.delivered"])
    sink.script(503, body="down", times=1000)
    await wait_final_status(tenant, await _send(tenant))

    async def disabled() -> dict[str, Any] | None:
        [hook] = (await ok_rpc(tenant, "manage/list-webhooks", {}))["webhooks"]
        return hook if not hook["active"] else None

    hook = await wait_for(disabled, timeout_s=30, what="the endpoint disabled")
    assert hook["disabledReason"] == "failing for too long"
    [delivery] = await _deliveries(tenant, created["webhookId"])
    assert delivery["status"] == "FAILED"
    assert all(a["outcome"] == "failed" for a in delivery["attempts"])
    assert len(delivery["attempts"]) == len(sink.requests)

    # A disabled endpoint gets nothing more.
    calls = len(sink.requests)
    await wait_final_status(tenant, await _send(tenant, "u2"))
    assert len(sink.requests) == calls


async def test_a_hanging_endpoint_never_slows_delivery(
    email_tenant: Tenant, sink: WebhookSink
) -> None:
    tenant = email_tenant
    await _create(tenant, sink.hook_url, ["notification.delivered"])
    sink.hold()  # every call hangs until released (longer than the webhook timeout)
    transactions = [await _send(tenant, f"u{1 + i % 3}") for i in range(12)]
    statuses = [await wait_final_status(tenant, txn, timeout_s=15) for txn in transactions]
    assert {s["result"] for s in statuses} == {"DELIVERED"}
    # Every notification was delivered while the endpoint had answered nothing at all.
    assert sink.requests  # the webhook was being called…
    sink.release()  # …and once it answers again, every event arrives
    ids: set[str] = set()

    async def all_arrived() -> bool:
        ids.update(r.headers["webhook-id"] for r in sink.requests)
        return len(ids) == len(transactions)

    await wait_for(all_arrived, timeout_s=40, what="every event to reach the endpoint")


async def test_rotated_secret_signs_beside_the_old_one(
    email_tenant: Tenant, sink: WebhookSink
) -> None:
    tenant = email_tenant
    created = await _create(tenant, sink.hook_url, ["notification.delivered"])
    rotated = await ok_rpc(
        tenant, "manage/rotate-webhook-secret", {"webhookId": created["webhookId"]}
    )
    assert rotated["secret"] != created["secret"]
    await wait_final_status(tenant, await _send(tenant))
    [request] = await sink.wait_for_requests(1, timeout_s=10)
    assert verify_standard_webhook(rotated["secret"], request)
    assert verify_standard_webhook(created["secret"], request)  # during the grace period


async def test_inbox_read_event(tenant: Tenant, sink: WebhookSink) -> None:
    await _create(tenant, sink.hook_url, ["inbox.read"])
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {}})
    txn = (
        await ok_rpc(
            tenant,
            "manage/send",
            {"userId": "u1", "channel": "IN_APP", "content": {"title": "Hi", "body": "In app"}},
        )
    )["transactionId"]
    await wait_final_status(tenant, txn)
    headers = tenant.user_headers("u1")
    [message] = (await ok_rpc(tenant, "get-inbox-feed", {}, headers=headers))["messages"]
    await ok_rpc(
        tenant,
        "mark-inbox-message",
        {"messageId": message["messageId"], "status": "READ"},
        headers=headers,
    )
    [request] = await sink.wait_for_requests(1, timeout_s=10)
    event = json.loads(request.body)
    assert (event["type"], event["data"]["messageId"], event["data"]["userId"]) == (
        "inbox.read",
        message["messageId"],
        "u1",
    )


async def test_webhook_rpcs_validate_and_404(tenant: Tenant) -> None:
    bad = await rpc(
        tenant, "manage/create-webhook", {"url": "ftp://x", "events": ["notification.sent"]}
    )
    assert bad.status_code == 400
    assert len(bad.json()["error"]) == 2
    empty = await rpc(tenant, "manage/create-webhook", {"url": "https://a.example/h", "events": []})
    assert empty.status_code == 400
    for name in (
        "manage/delete-webhook",
        "manage/rotate-webhook-secret",
        "manage/list-webhook-deliveries",
    ):
        missing = await rpc(tenant, name, {"webhookId": "whk_nope"})
        assert missing.status_code == 404, name
    made = await _create(tenant, "https://a.example/h", ["inbox.read"])
    deleted = await ok_rpc(tenant, "manage/delete-webhook", {"webhookId": made["webhookId"]})
    assert deleted == {"deleted": True, "webhookId": made["webhookId"]}
    assert (await ok_rpc(tenant, "manage/list-webhooks", {}))["webhooks"] == []


async def test_webhooks_need_an_admin_key(system: System) -> None:
    viewer = await system.new_tenant(scopes=("read",))
    try:
        answer = await rpc(viewer, "manage/list-webhooks", {})
        assert answer.status_code == 403
    finally:
        await viewer.client.aclose()


async def test_a_bounce_is_announced_once(
    tenant: Tenant, sendgrid: FakeSendGrid, sink: WebhookSink, system: System
) -> None:
    signer = SendGridSigner()
    await configure(
        tenant,
        "SENDGRID",
        sendgrid.url,
        {
            "apiKey": DEFAULT_API_KEY,
            "fromEmail": "n@acme.test",
            "webhookPublicKey": signer.public_key,
        },
    )
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": EMAIL}}
    )
    await _create(tenant, sink.hook_url, ["notification.bounced"])
    status = await wait_final_status(tenant, await _send(tenant))
    bounce = {
        "email": EMAIL,
        "timestamp": int(time.time()),
        "event": "bounce",
        "type": "bounce",
        "sg_event_id": "evt-bounce-1",
        "sg_message_id": f"{status['providerMessageId']}.filter",
        "tenant_id": tenant.tenant_id,
    }
    body = json.dumps([bounce]).encode()
    async with httpx.AsyncClient(base_url=system.base_url) as hooks:
        for _ in range(3):  # SendGrid retries: the same event three times
            answer = await hooks.post(
                "/webhooks/sendgrid", content=body, headers=signer.headers(body)
            )
            assert answer.status_code == 200
    [request] = await sink.wait_for_requests(1, timeout_s=10)
    event = json.loads(request.body)
    assert (event["type"], event["data"]["result"], event["data"]["address"]) == (
        "notification.bounced",
        "INVALID_CREDENTIAL",
        EMAIL,
    )
    assert system.db is not None
    db = system.db

    async def settled() -> bool:
        applied = await db.receipts.count(tenant_id=tenant.tenant_id, applied_at={"$exists": True})
        deliveries = await db.webhook_deliveries.for_event(
            tenant_id=tenant.tenant_id, event_id=request.headers["webhook-id"]
        )
        return applied == 1 and [d["status"] for d in deliveries] == ["DELIVERED"]

    await wait_for(settled, timeout_s=10, what="the receipt applied and its webhook delivered")
    assert len(sink.requests) == 1
