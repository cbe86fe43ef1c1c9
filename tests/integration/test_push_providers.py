"""PUSH through FCM and APNs end to end: each device through the provider its token belongs to."""

from __future__ import annotations

from typing import Any

from tests.fakes.apns import FakeApns
from tests.fakes.fcm import FakeFcm
from tests.integration.helpers import configure, configure_fcm, ok_rpc, rpc, send_and_wait
from tests.support import Tenant

IPHONE = "0a1b" * 16
OLD_IPHONE = "ffee" * 16


async def _register(tenant: Tenant, user: str, device: str, **token: str) -> None:
    await ok_rpc(
        tenant,
        "register-push-device",
        {**token, "platform": "IOS" if "apnsToken" in token else "ANDROID", "deviceId": device},
        headers=tenant.user_headers(user),
    )


async def _devices(tenant: Tenant, user: str) -> list[dict[str, Any]]:
    answer = await ok_rpc(tenant, "manage/get-subscriber", {"userId": user})
    devices: list[dict[str, Any]] = answer["subscriber"]["devices"]
    return devices


async def test_fcm_and_apns_devices_of_one_user_each_get_it(
    tenant: Tenant, fcm: FakeFcm, apns: FakeApns
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await configure(tenant, "APNS", apns.url, apns.credentials())
    await _register(tenant, "u1", "pixel", fcmToken="fcm-token-1")
    await _register(tenant, "u1", "iphone", apnsToken=IPHONE)

    status = await send_and_wait(tenant, "u1", "PUSH", deepLink="app://inbox")

    assert status["result"] == "DELIVERED"
    assert [m["token"] for m in fcm.messages] == ["fcm-token-1"]
    [push] = apns.notifications
    assert push.token == IPHONE
    assert push.json()["aps"]["alert"] == {"title": "Hello", "body": "A notification"}
    assert push.json()["deepLink"] == "app://inbox"
    assert sorted(a["provider"] for a in status["attempts"]) == ["APNS", "FCM"]
    assert {d["deviceId"]: d["provider"] for d in await _devices(tenant, "u1")} == {
        "pixel": "FCM",
        "iphone": "APNS",
    }


async def test_dead_apns_token_is_invalid_credential_and_removed(
    tenant: Tenant, apns: FakeApns
) -> None:
    await configure(tenant, "APNS", apns.url, apns.credentials())
    await _register(tenant, "u1", "old-iphone", apnsToken=OLD_IPHONE)
    apns.unregistered[OLD_IPHONE] = 1_700_000_000_000

    status = await send_and_wait(tenant, "u1", "PUSH")

    assert (status["result"], status["failureReason"]) == ("INVALID_CREDENTIAL", "Unregistered")
    assert await _devices(tenant, "u1") == []


async def test_failover_between_two_apns_configs(tenant: Tenant, apns: FakeApns) -> None:
    # The preferred config's key was revoked: its circuit opens at once and the second takes it.
    revoked = FakeApns().private_key_pem
    await configure(
        tenant,
        "APNS",
        apns.url,
        {**apns.credentials(), "privateKey": revoked},
        providerId="apns-old-key",
        priority=0,
    )
    await configure(
        tenant, "APNS", apns.url, apns.credentials(), providerId="apns-new-key", priority=1
    )
    await _register(tenant, "u1", "iphone", apnsToken=IPHONE)

    status = await send_and_wait(tenant, "u1", "PUSH")

    assert status["result"] == "DELIVERED"
    assert [(a["provider"], a["outcome"]) for a in status["attempts"]] == [
        ("apns-old-key", "PROVIDER_AUTH"),
        ("apns-new-key", "DELIVERED"),
    ]
    assert len(apns.notifications) == 1


async def test_apns_device_without_an_apns_provider_has_no_channel(
    tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await _register(tenant, "u1", "iphone", apnsToken=IPHONE)

    status = await send_and_wait(tenant, "u1", "PUSH")

    assert (status["result"], status["failureReason"]) == ("NO_CHANNEL", "no_provider")
    assert fcm.messages == []


async def test_register_push_device_takes_one_token_of_either_kind(tenant: Tenant) -> None:
    me = tenant.user_headers("u9")
    both = await rpc(
        tenant,
        "register-push-device",
        {"fcmToken": "f", "apnsToken": IPHONE, "platform": "IOS", "deviceId": "d"},
        headers=me,
    )
    neither = await rpc(
        tenant, "register-push-device", {"platform": "IOS", "deviceId": "d"}, headers=me
    )
    not_hex = await rpc(
        tenant,
        "register-push-device",
        {"apnsToken": "not-a-token", "platform": "IOS", "deviceId": "d"},
        headers=me,
    )
    assert [r.status_code for r in (both, neither, not_hex)] == [400, 400, 400]
    assert both.json()["error"] == ["exactly one of fcmToken and apnsToken is required"]
    assert neither.json()["error"] == ["exactly one of fcmToken and apnsToken is required"]
    assert not_hex.json()["error"] == ["apnsToken must be the hexadecimal device token APNs issued"]
    await _register(tenant, "u9", "iphone", apnsToken=IPHONE)
    removed = await ok_rpc(tenant, "unregister-push-device", {"apnsToken": IPHONE}, headers=me)
    assert removed == {"removed": True}
