"""Subscriber RPCs and the user RPCs for push devices and registered channels."""

from __future__ import annotations

from tests.integration.helpers import ok_rpc, rpc
from tests.support import Tenant


async def test_subscriber_lifecycle(tenant: Tenant) -> None:
    data = {
        "firstName": "Jane",
        "lastName": "Doe",
        "email": "jane@example.com",
        "phone": "+1234567890",
        "locale": "en-US",
        "timezone": "America/New_York",
    }
    created = await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "user-1", "subscriberData": data}
    )
    assert {k: created["subscriber"][k] for k in data} == data
    again = await rpc(
        tenant, "manage/create-subscriber", {"userId": "user-1", "subscriberData": data}
    )
    assert again.status_code == 409

    updated = await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {
            "userId": "user-1",
            "subscriberData": {"email": "jane.updated@example.com", "locale": "en-GB"},
        },
    )
    assert updated["subscriber"]["email"] == "jane.updated@example.com"
    assert updated["subscriber"]["locale"] == "en-GB"
    assert updated["subscriber"]["firstName"] == "Jane"  # untouched fields stay

    fetched = await ok_rpc(tenant, "manage/get-subscriber", {"userId": "user-1"})
    assert fetched["subscriber"]["email"] == "jane.updated@example.com"

    for i in range(2, 6):
        await ok_rpc(tenant, "manage/create-subscriber", {"userId": f"user-{i}"})
    page = await ok_rpc(tenant, "manage/list-subscribers", {"page": 2, "pageSize": 2})
    assert [s["userId"] for s in page["subscribers"]] == ["user-3", "user-4"]
    assert page["totalCount"] == 5
    assert page["hasMore"] is True

    assert (await ok_rpc(tenant, "manage/delete-subscriber", {"userId": "user-1"}))[
        "deleted"
    ] is True
    assert (await rpc(tenant, "manage/get-subscriber", {"userId": "user-1"})).status_code == 404
    assert (await rpc(tenant, "manage/delete-subscriber", {"userId": "user-1"})).status_code == 404


async def test_subscriber_fields_are_validated(tenant: Tenant) -> None:
    response = await rpc(
        tenant,
        "manage/create-subscriber",
        {
            "userId": "",
            "subscriberData": {
                "email": "nope",
                "phone": "555",
                "timezone": "Mars/Base",
                "locale": "!",
            },
        },
    )
    assert response.status_code == 400
    errors = response.json()["error"]
    assert "userId should not be empty" in errors
    assert any(e.startswith("subscriberData.email") for e in errors)
    assert "subscriberData.phone must be an E.164 phone number such as +14155550100" in errors
    assert "subscriberData.timezone must be an IANA time zone such as America/New_York" in errors
    assert "subscriberData.locale must be a locale tag such as en-US" in errors
    assert (await ok_rpc(tenant, "manage/list-subscribers", {}))["totalCount"] == 0


async def test_devices_and_registered_channels(tenant: Tenant) -> None:
    me = tenant.user_headers("user-7")
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "user-7", "subscriberData": {"email": "u7@x.io"}},
    )
    for token, device in (("tok-a", "dev-a"), ("tok-b", "dev-b"), ("tok-b2", "dev-b")):
        registered = await ok_rpc(
            tenant,
            "register-push-device",
            {"fcmToken": token, "platform": "IOS", "deviceId": device},
            headers=me,
        )
        assert registered == {"registered": True, "deviceId": device}
    channels = await ok_rpc(tenant, "get-registered-channels", {}, headers=me)
    by_name = {c["channel"]: c for c in channels["channels"]}
    # dev-b registered twice: its new token replaced the old one.
    assert by_name["PUSH"] == {"channel": "PUSH", "registered": True, "credentialCount": 2}
    assert by_name["EMAIL"] == {"channel": "EMAIL", "registered": True, "credentialCount": 1}
    assert by_name["SMS"]["registered"] is False

    assert (await ok_rpc(tenant, "unregister-push-device", {"fcmToken": "tok-a"}, headers=me)) == {
        "removed": True
    }
    assert (await ok_rpc(tenant, "unregister-push-device", {"fcmToken": "tok-a"}, headers=me)) == {
        "removed": False
    }
    channels = await ok_rpc(tenant, "get-registered-channels", {}, headers=me)
    assert channels["channels"][0] == {"channel": "PUSH", "registered": True, "credentialCount": 1}


async def test_register_device_creates_the_subscriber_and_validates(tenant: Tenant) -> None:
    me = tenant.user_headers("fresh-user")
    bad = await rpc(
        tenant, "register-push-device", {"fcmToken": "", "platform": "BLACKBERRY"}, headers=me
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == [
        "fcmToken should not be empty",
        "platform must be one of the following values: IOS, ANDROID, WEB",
        "deviceId is required",
    ]
    await ok_rpc(
        tenant,
        "register-push-device",
        {"fcmToken": "t", "platform": "WEB", "deviceId": "d"},
        headers=me,
    )
    assert (await ok_rpc(tenant, "manage/get-subscriber", {"userId": "fresh-user"}))["subscriber"][
        "devices"
    ][0]["platform"] == "WEB"
