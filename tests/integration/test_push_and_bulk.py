"""Push through a fake FCM (OAuth included) and bulk fan-out of 100 recipients."""

from __future__ import annotations

from typing import Any

from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure_fcm,
    configure_sendgrid,
    ok_rpc,
    rpc,
    wait_final_status,
)
from tests.support import System, Tenant


async def _device(tenant: Tenant, user: str, token: str, device: str) -> None:
    await ok_rpc(
        tenant,
        "register-push-device",
        {"fcmToken": token, "platform": "ANDROID", "deviceId": device},
        headers=tenant.user_headers(user),
    )


async def _push_to_u1(tenant: Tenant) -> dict[str, Any]:
    """manage/send a push to u1 and wait for its final status."""
    sent = await ok_rpc(
        tenant, "manage/send", {"userId": "u1", "channel": "PUSH", "content": {"body": "x"}}
    )
    return await wait_final_status(tenant, sent["transactionId"])


async def test_push_via_manage_send_is_delivered(tenant: Tenant, fcm: FakeFcm) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await _device(tenant, "u1", "token-good", "phone")
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {
            "userId": "u1",
            "channel": "PUSH",
            "category": "TRANSACTIONAL",
            "content": {
                "title": "New Message",
                "body": "You have a new coaching update",
                "data": {"screen": "conversation", "id": "conv_abc"},
                "deepLink": "socayo://conversation/conv_abc",
            },
            "priority": 5,
        },
    )
    status = await wait_final_status(tenant, sent["transactionId"])
    assert status["result"] == "DELIVERED"
    assert status["channel"] == "PUSH"
    assert status["providerMessageId"] == fcm.message_names[0]
    [message] = fcm.messages
    assert message["token"] == "token-good"
    assert message["notification"] == {
        "title": "New Message",
        "body": "You have a new coaching update",
    }
    assert message["data"] == {
        "screen": "conversation",
        "id": "conv_abc",
        "deepLink": "socayo://conversation/conv_abc",
    }
    assert message["android"]["priority"] == "HIGH"
    assert len(fcm.token_requests) == 1


async def test_unregistered_token_is_invalid_credential_and_removed(
    tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await _device(tenant, "u1", "token-dead", "old-phone")
    fcm.unregistered_tokens.add("token-dead")
    status = await _push_to_u1(tenant)
    assert status["result"] == "INVALID_CREDENTIAL"
    assert status["failureReason"] == "UNREGISTERED"
    subscriber = await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"})
    assert subscriber["subscriber"]["devices"] == []
    channels = await ok_rpc(
        tenant, "get-registered-channels", {}, headers=tenant.user_headers("u1")
    )
    assert channels["channels"][0] == {"channel": "PUSH", "registered": False, "credentialCount": 0}


async def test_one_dead_device_among_live_ones(tenant: Tenant, fcm: FakeFcm) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await _device(tenant, "u1", "token-live", "tablet")
    await _device(tenant, "u1", "token-bad", "watch")
    fcm.invalid_tokens.add("token-bad")
    status = await _push_to_u1(tenant)
    assert status["result"] == "DELIVERED"
    devices = (await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"}))["subscriber"][
        "devices"
    ]
    assert [d["deviceId"] for d in devices] == ["tablet"]


async def test_refused_service_account_is_failed_provider_auth(
    tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json(registered=False))
    await _device(tenant, "u1", "token-good", "phone")
    status = await _push_to_u1(tenant)
    assert (status["result"], status["failureReason"]) == ("FAILED", "provider_auth")
    assert fcm.messages == []


async def test_bulk_of_100_delivers_100(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    users = [f"bulk-{i:03d}" for i in range(100)]
    for user in users:
        await ok_rpc(
            tenant,
            "manage/create-subscriber",
            {"userId": user, "subscriberData": {"email": f"{user}@x.io"}},
        )
    sent = await ok_rpc(
        tenant,
        "manage/send-bulk",
        {
            "userIds": users,
            "channel": "EMAIL",
            "category": "PRODUCT",
            "content": {"title": "New", "body": "Update"},
        },
    )
    assert sent["recipientCount"] == 100
    status = await wait_final_status(tenant, sent["transactionId"], timeout_s=40)
    assert status["result"] == "DELIVERED"
    assert status["summary"] == {"DELIVERED": 100}
    assert sorted(r["userId"] for r in status["recipients"]) == users
    assert sorted(m["personalizations"][0]["to"][0]["email"] for m in sendgrid.mails) == [
        f"{u}@x.io" for u in users
    ]


async def test_bulk_of_101_is_refused_and_stores_nothing(system: System, tenant: Tenant) -> None:
    response = await rpc(
        tenant,
        "manage/send-bulk",
        {"userIds": [f"u{i}" for i in range(101)], "channel": "PUSH", "content": {"body": "x"}},
    )
    assert response.status_code == 400
    assert response.json()["error"] == ["userIds must contain at most 100 items"]
    assert system.db is not None
    assert await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id}) == 0


async def test_bulk_idempotency_key_and_mixed_results(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "a", "subscriberData": {"email": "a@x.io"}}
    )
    body = {
        "userIds": ["a", "nobody", "a"],
        "channel": "EMAIL",
        "content": {"title": "T", "body": "x"},
        "idempotencyKey": "campaign-7",
    }
    first = await ok_rpc(tenant, "manage/send-bulk", body)
    assert first["recipientCount"] == 2  # the repeated "a" is sent once
    again = await ok_rpc(tenant, "manage/send-bulk", body)
    assert again["transactionId"] == first["transactionId"]
    status = await wait_final_status(tenant, first["transactionId"])
    assert status["summary"] == {"DELIVERED": 1, "NO_CHANNEL": 1}
    assert status["result"] == "FAILED"  # mixed: the per-recipient rows say which
    assert len(sendgrid.mails) == 1
