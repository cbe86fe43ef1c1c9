"""Seed 003 end to end through a fake SendGrid: render, deliver, idempotency, outcomes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from shared.records import NotificationRecord
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure_sendgrid,
    ok_rpc,
    rpc,
    wait_final_status,
    wait_notification,
)
from tests.records import stored_doc
from tests.support import System, Tenant, wait_for

USER = "123e4567-e89b-12d3-a456-426614174000"


async def _seed_setup(tenant: Tenant, sendgrid: FakeSendGrid) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": USER, "subscriberData": {"firstName": "John", "email": "john@example.com"}},
    )
    await ok_rpc(
        tenant,
        "manage/create-template",
        {
            "templateCode": "welcome_email",
            "channel": "EMAIL",
            "subject": "Welcome, {{ name }}!",
            "body": "Hello {{ name }}, start at {{ link }} (campaign {{ meta.campaign }}).",
        },
    )


async def _email_user(
    tenant: Tenant, sendgrid: FakeSendGrid, api_key: str = DEFAULT_API_KEY
) -> None:
    """SendGrid configured (with `api_key`) and subscriber u1 with an address."""
    await configure_sendgrid(tenant, sendgrid.url, api_key)
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )


async def _send_to_u1(tenant: Tenant) -> dict[str, Any]:
    """manage/send an e-mail to u1 and wait for its final status."""
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "EMAIL", "content": {"title": "T", "body": "x"}},
    )
    return await wait_final_status(tenant, sent["transactionId"])


def _seed_request(request_id: str) -> dict[str, Any]:
    return {
        "notification_type": "email",
        "user_id": USER,
        "template_code": "welcome_email",
        "variables": {
            "name": "John Doe",
            "link": "https://example.com/welcome",
            "meta": {"campaign": "onboarding"},
        },
        "request_id": request_id,
        "priority": 1,
        "metadata": {"title": "Welcome to Our Platform"},
    }


async def test_seed_example_is_delivered_with_the_rendered_mail(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _seed_setup(tenant, sendgrid)
    response = await tenant.client.post(
        "/api/v1/notifications",
        json=_seed_request("req-123e4567-e89b-12d3-a456-426614174000"),
        headers={"X-Request-ID": "corr-seed-1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Notification queued successfully"
    assert body["data"]["status"] == "queued"
    assert response.headers["x-correlation-id"] == "corr-seed-1"

    final = await wait_notification(tenant, body["data"]["notification_id"])
    assert final["status"] == "delivered"
    assert final["result"] == "DELIVERED"
    assert final["channel"] == "email"
    assert final["provider"] == "SENDGRID"
    assert final["provider_message_id"] == sendgrid.message_ids[0]
    assert [a["outcome"] for a in final["attempts"]] == ["DELIVERED"]
    assert final["queued_at"] <= final["delivered_at"]

    [mail] = sendgrid.mails_to("john@example.com")
    assert mail["subject"] == "Welcome, John Doe!"
    assert mail["content"][0]["value"] == (
        "Hello John Doe, start at https://example.com/welcome (campaign onboarding)."
    )
    assert mail["from"] == {"email": "noreply@acme.test", "name": "Acme"}
    # The seed's answer names the notification by its request_id; GET adds the internal id.
    assert body["data"]["notification_id"] == "req-123e4567-e89b-12d3-a456-426614174000"
    assert final["notification_id"] == body["data"]["notification_id"]
    assert mail["custom_args"]["notification_id"] == final["internal_id"]
    by_internal = await tenant.client.get(f"/api/v1/notifications/{final['internal_id']}")
    assert by_internal.json()["data"]["notification_id"] == body["data"]["notification_id"]
    assert system.db is not None
    record = await stored_doc(
        system.db, tenant_id=tenant.tenant_id, notification_id=final["internal_id"]
    )
    assert record is not None
    assert record["correlation_id"] == "corr-seed-1"  # carried to the worker in the headers


async def test_same_request_id_returns_the_same_id_and_sends_once(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _seed_setup(tenant, sendgrid)
    request = _seed_request(f"req-{uuid.uuid4()}")
    first, second = await asyncio.gather(
        tenant.client.post("/api/v1/notifications", json=request),
        tenant.client.post("/api/v1/notifications", json=request),
    )
    third = await tenant.client.post("/api/v1/notifications", json=request)
    ids = {r.json()["data"]["notification_id"] for r in (first, second, third)}
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert len(ids) == 1
    await wait_notification(tenant, ids.pop())
    # A later, different request proves the worker is not simply slow: it goes through.
    other = await tenant.client.post("/api/v1/notifications", json=_seed_request("req-other"))
    await wait_notification(tenant, other.json()["data"]["notification_id"])
    assert len(sendgrid.mails) == 2
    assert system.db is not None
    assert await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id}) == 2


async def test_manage_send_idempotency_key_returns_the_first_transaction(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )
    body = {
        "userId": "u1",
        "channel": "EMAIL",
        "category": "TRANSACTIONAL",
        "content": {"title": "Receipt", "body": "Thanks"},
        "idempotencyKey": "unique-key-123",
    }
    first = await ok_rpc(tenant, "manage/send", body)
    again = await ok_rpc(tenant, "manage/send", body)
    assert first == again
    status = await wait_final_status(tenant, first["transactionId"])
    assert status["result"] == "DELIVERED"
    assert status["providerMessageId"] == sendgrid.message_ids[0]
    assert len(sendgrid.mails) == 1
    assert sendgrid.mails[0]["subject"] == "Receipt"  # title stands in for a missing subject


async def test_our_rejected_key_is_failed_provider_auth_once_retries_are_spent(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid, api_key="SG.revoked")
    status = await _send_to_u1(tenant)
    assert status["result"] == "FAILED"
    assert status["failureReason"] == "provider_auth"
    # The session allows 3 attempts; the open circuit spaces them by its cool-down.
    assert [a["outcome"] for a in status["attempts"]] == ["PROVIDER_AUTH"] * 3
    assert sendgrid.mails == []


async def test_429_waits_for_the_rate_limit_reset_before_the_next_attempt(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_rate_limit(reset_in_s=30)
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "EMAIL", "content": {"title": "T", "body": "x"}},
    )
    assert system.db is not None
    db = system.db

    async def retrying() -> NotificationRecord | None:
        records = await db.notifications.find_by_transaction(
            tenant_id=tenant.tenant_id, transaction_id=sent["transactionId"]
        )
        return records[0] if records and records[0].status == "RETRYING" else None

    record = await wait_for(retrying, timeout_s=10, what="the record to be RETRYING")
    assert record.retry_after_s is not None
    assert record.next_attempt_at is not None
    assert 25 <= record.retry_after_s <= 31
    waited = (record.next_attempt_at - record.attempts[0].at).total_seconds()
    assert 28 <= waited <= 32
    assert record.failure_reason == "rate_limited"
    assert len(sendgrid.requests) == 1


async def test_permanent_refusal_is_failed_with_the_providers_words(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(400, "The from address does not match a verified Sender Identity.")
    status = await _send_to_u1(tenant)
    assert status["result"] == "FAILED"
    assert status["failureReason"] == "bad_request"
    assert "verified Sender Identity" in status["attempts"][0]["detail"]


async def test_no_provider_or_no_address_is_no_channel(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u2", "subscriberData": {}})
    no_provider = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "EMAIL", "content": {"title": "T", "body": "x"}},
    )
    status = await wait_final_status(tenant, no_provider["transactionId"])
    assert (status["result"], status["failureReason"]) == ("NO_CHANNEL", "no_provider")

    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    no_email = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u2", "channel": "EMAIL", "content": {"title": "T", "body": "x"}},
    )
    status = await wait_final_status(tenant, no_email["transactionId"])
    assert (status["result"], status["failureReason"]) == ("NO_CHANNEL", "no_email_address")
    unknown = await ok_rpc(
        tenant, "manage/send", {"userId": "ghost", "channel": "SMS", "content": {"body": "x"}}
    )
    status = await wait_final_status(tenant, unknown["transactionId"])
    assert (status["result"], status["failureReason"]) == ("NO_CHANNEL", "subscriber_not_found")
    assert sendgrid.mails == []


async def test_providers_are_listed_without_secrets_and_checked(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, "SG.top-secret-value")
    listed = await ok_rpc(tenant, "manage/get-providers", {})
    assert "top-secret" not in str(listed)
    [provider] = listed["providers"]
    assert provider["providerType"] == "SENDGRID"
    assert provider["channel"] == "EMAIL"
    assert provider["endpoint"] == sendgrid.url
    assert provider["credentialFields"] == ["apiKey", "fromEmail", "fromName"]

    bad = await rpc(
        tenant,
        "manage/configure-provider",
        {"providerType": "SENDGRID", "credentials": {"apiKey": ""}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == [
        "credentials.apiKey is required for SENDGRID",
        "credentials.fromEmail is required for SENDGRID",
    ]
    fcm = await rpc(
        tenant,
        "manage/configure-provider",
        {"providerType": "FCM", "credentials": {"serviceAccountJson": "{not json"}},
    )
    assert fcm.json()["error"] == [
        "credentials.serviceAccountJson must be a service-account JSON document"
    ]
    unknown = await rpc(
        tenant, "manage/configure-provider", {"providerType": "PIGEON", "credentials": {}}
    )
    assert unknown.status_code == 400


async def test_email_without_subject_or_title_is_refused(system: System, tenant: Tenant) -> None:
    response = await rpc(
        tenant, "manage/send", {"userId": "u1", "channel": "EMAIL", "content": {"body": "x"}}
    )
    assert response.status_code == 400
    assert response.json()["error"] == ["content.subject or content.title is required for EMAIL"]


async def test_one_worker_delivers_concurrently(tenant: Tenant, sendgrid: FakeSendGrid) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.hold()  # the provider answers nothing until released
    sent = [
        await ok_rpc(
            tenant,
            "manage/send",
            {"userId": "u1", "channel": "EMAIL", "content": {"title": f"T{i}", "body": "x"}},
        )
        for i in range(5)
    ]
    # All five provider calls are in flight at once in the single e-mail worker.
    await sendgrid.wait_for_requests(5, timeout_s=10)
    sendgrid.release()
    for s in sent:
        assert (await wait_final_status(tenant, s["transactionId"]))["result"] == "DELIVERED"
