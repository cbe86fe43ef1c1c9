"""Preferences through the real API, broker and database: the seed's RPCs and their admin
twins, each switch and its OPTED_OUT at delivery time, the SYSTEM bypass, a delayed send
obeying the preference in force when it is due, and the `notification.opted_out` webhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.fcm import FakeFcm
from tests.fakes.webhook_sink import WebhookSink
from tests.integration.helpers import configure_fcm, ok_rpc, rpc, wait_final_status
from tests.integration.workflow_support import push_device
from tests.records import stored_doc
from tests.support import System, Tenant

CATEGORIES = ("TRANSACTIONAL", "PRODUCT", "PROMOTIONAL")
CHANNELS = ("PUSH", "IN_APP", "EMAIL", "SMS", "CHAT")
ALL_ON = dict.fromkeys(CATEGORIES, True)


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """A tenant's webhook endpoint on 127.0.0.1."""
    async with WebhookSink() as fake:
        yield fake


async def _prefs(tenant: Tenant, user: str) -> dict[str, dict[str, Any]]:
    got = await ok_rpc(tenant, "get-preferences", {}, headers=tenant.user_headers(user))
    return {e["channel"]: e for e in got["preferences"]}


async def _switch(tenant: Tenant, user: str, **body: Any) -> dict[str, Any]:
    return await ok_rpc(tenant, "update-preferences", body, headers=tenant.user_headers(user))


async def _send(tenant: Tenant, user: str, channel: str, category: str, **extra: Any) -> str:
    sent = await ok_rpc(
        tenant,
        extra.pop("rpc", "manage/send"),
        {
            "userId": user,
            "channel": channel,
            "category": category,
            "content": {"title": "Hi", "subject": "Hi", "body": "Hello"},
            **extra,
        },
    )
    return str(sent["transactionId"])


async def _subscriber_doc(system: System, tenant: Tenant, user: str) -> dict[str, Any] | None:
    assert system.db is not None
    return await system.db.subscribers.get(tenant_id=tenant.tenant_id, subscriber_id=user)


async def test_everything_is_enabled_until_the_user_says_otherwise(
    system: System, tenant: Tenant
) -> None:
    got = await ok_rpc(tenant, "get-preferences", {}, headers=tenant.user_headers("new"))
    assert got == {
        "preferences": [
            {"channel": c, "channelEnabled": True, "categories": ALL_ON} for c in CHANNELS
        ]
    }
    assert await _subscriber_doc(system, tenant, "new") is None  # a read creates nothing


async def test_an_update_answers_the_preferences_and_stores_only_what_was_said(
    system: System, tenant: Tenant
) -> None:
    answer = await _switch(tenant, "u1", channel="PUSH", category="PROMOTIONAL", enabled=False)
    push = answer["preferences"][0]
    assert push == {
        "channel": "PUSH",
        "channelEnabled": True,
        "categories": {"TRANSACTIONAL": True, "PRODUCT": True, "PROMOTIONAL": False},
    }
    assert len(answer["preferences"]) == 5
    answer = await _switch(tenant, "u1", channel="SMS", enabled=False)
    assert {e["channel"]: e["channelEnabled"] for e in answer["preferences"]} == {
        "PUSH": True,
        "IN_APP": True,
        "EMAIL": True,
        "SMS": False,
        "CHAT": True,
    }
    assert await _prefs(tenant, "u1") == {e["channel"]: e for e in answer["preferences"]}
    # The user RPC created the subscriber (like register-push-device); only the two switches
    # the user touched are stored, in the format workflow channel defaults read.
    doc = await _subscriber_doc(system, tenant, "u1")
    assert doc is not None
    assert doc["preferences"] == {
        "push": {"categories": {"PROMOTIONAL": False}},
        "sms": {"enabled": False},
    }
    await _switch(tenant, "u1", channel="PUSH", category="PROMOTIONAL", enabled=True)
    assert (await _prefs(tenant, "u1"))["PUSH"]["categories"] == ALL_ON


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"channel": "PUSH", "category": "SYSTEM", "enabled": False},
            "category SYSTEM cannot be turned off: SYSTEM notifications bypass preferences",
        ),
        (
            {"channel": "FAX", "enabled": False},
            "channel must be one of PUSH, IN_APP, EMAIL, SMS, CHAT: 'FAX' is not a channel",
        ),
        (
            {"channel": "push", "enabled": False},
            "channel must be one of PUSH, IN_APP, EMAIL, SMS, CHAT: 'push' is not a channel",
        ),
        (
            {"channel": "PUSH", "category": "NEWS", "enabled": False},
            "category must be one of TRANSACTIONAL, PRODUCT, PROMOTIONAL: 'NEWS' is not a category",
        ),
        ({"channel": "PUSH"}, "enabled is required"),
        ({"channel": "PUSH", "enabled": "no"}, "enabled must be a boolean"),
    ],
)
async def test_bad_updates_are_400_naming_the_field_and_change_nothing(
    system: System, tenant: Tenant, body: dict[str, Any], error: str
) -> None:
    response = await rpc(tenant, "update-preferences", body, headers=tenant.user_headers("u1"))
    assert response.status_code == 400, response.text
    assert error in response.json()["error"]
    admin = await rpc(tenant, "manage/update-subscriber-preferences", {**body, "userId": "u1"})
    assert admin.status_code == 400
    assert error in admin.json()["error"]
    assert await _subscriber_doc(system, tenant, "u1") is None


async def test_preference_rpcs_need_a_user(tenant: Tenant) -> None:
    for name, body in (("get-preferences", {}), ("update-preferences", {"channel": "PUSH"})):
        response = await rpc(tenant, name, body)
        assert response.status_code == 400
        assert response.json()["error"] == ["X-User-ID header is required for this operation"]


async def test_admins_read_and_set_any_subscribers_preferences(tenant: Tenant) -> None:
    for name, body in (
        ("manage/get-subscriber-preferences", {"userId": "ghost"}),
        (
            "manage/update-subscriber-preferences",
            {"userId": "ghost", "channel": "EMAIL", "enabled": False},
        ),
    ):
        response = await rpc(tenant, name, body)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == ["subscriber ghost does not exist"]

    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1"})
    answer = await ok_rpc(
        tenant,
        "manage/update-subscriber-preferences",
        {"userId": "u1", "channel": "EMAIL", "category": "PRODUCT", "enabled": False},
    )
    assert answer["userId"] == "u1"
    email = answer["preferences"][2]
    assert (email["channel"], email["categories"]["PRODUCT"]) == ("EMAIL", False)
    read = await ok_rpc(tenant, "manage/get-subscriber-preferences", {"userId": "u1"})
    assert read == answer
    assert (await _prefs(tenant, "u1"))["EMAIL"] == email  # the user sees the admin's change


async def test_each_channel_switch_ends_its_notifications_opted_out(
    system: System, tenant: Tenant
) -> None:
    # The preference is decided before addresses and providers: nothing else is needed.
    for channel in CHANNELS:
        user = f"off-{channel.lower()}"
        await _switch(tenant, user, channel=channel, enabled=False)
        status = await wait_final_status(
            tenant, await _send(tenant, user, channel, "TRANSACTIONAL")
        )
        assert (status["result"], status["failureReason"]) == ("OPTED_OUT", "preference"), channel
        [attempt] = status["attempts"]
        assert attempt["provider"] is None
    # The other channels of a user who turned one off are untouched.
    status = await wait_final_status(
        tenant, await _send(tenant, "off-push", "IN_APP", "TRANSACTIONAL")
    )
    assert status["result"] == "DELIVERED"


async def test_each_category_switch_ends_that_category_opted_out_on_that_channel(
    system: System, tenant: Tenant
) -> None:
    for category in CATEGORIES:
        user = f"no-{category.lower()}"
        await _switch(tenant, user, channel="IN_APP", category=category, enabled=False)
        results = {}
        for sent in CATEGORIES:
            status = await wait_final_status(tenant, await _send(tenant, user, "IN_APP", sent))
            results[sent] = status["result"]
        assert results == {c: "OPTED_OUT" if c == category else "DELIVERED" for c in CATEGORIES}
        assert system.db is not None
        inbox = await system.db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id=user)
        assert len(inbox) == 2


async def test_a_promotional_push_is_opted_out_and_a_system_one_delivered(
    system: System, tenant: Tenant, fcm: FakeFcm
) -> None:
    """The issue's acceptance: nothing reaches the provider for the opted-out one."""
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    await _switch(tenant, "u1", channel="PUSH", category="PROMOTIONAL", enabled=False)
    await _switch(tenant, "u1", channel="PUSH", enabled=False)  # even the whole channel

    promo = await wait_final_status(tenant, await _send(tenant, "u1", "PUSH", "PROMOTIONAL"))
    assert (promo["result"], promo["failureReason"]) == ("OPTED_OUT", "preference")
    assert fcm.messages == []
    system_push = await wait_final_status(tenant, await _send(tenant, "u1", "PUSH", "SYSTEM"))
    assert system_push["result"] == "DELIVERED"
    assert len(fcm.messages) == 1
    # Opted out is an answer, not a failure: nothing was dead-lettered.
    assert system.db is not None
    doc = await system.db.notifications.col.find_one(
        {"tenant_id": tenant.tenant_id, "transaction_id": promo["transactionId"]}
    )
    assert doc is not None
    assert "dead_lettered_at" not in doc
    stored = await stored_doc(system.db, tenant_id=tenant.tenant_id, notification_id=doc["_id"])
    assert stored is not None
    assert stored["failure_detail"] == "PUSH is turned off by the user"


async def test_a_delayed_send_obeys_the_preference_in_force_when_it_is_due(
    tenant: Tenant,
) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1"})
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u2"})
    await _switch(tenant, "u2", channel="IN_APP", enabled=False)
    turned_off = await _send(
        tenant, "u1", "IN_APP", "PRODUCT", rpc="manage/send-delayed", delaySeconds=2
    )
    turned_on = await _send(
        tenant, "u2", "IN_APP", "PRODUCT", rpc="manage/send-delayed", delaySeconds=2
    )
    # Both change their minds before the sends are due.
    await _switch(tenant, "u1", channel="IN_APP", category="PRODUCT", enabled=False)
    await _switch(tenant, "u2", channel="IN_APP", enabled=True)
    assert (await wait_final_status(tenant, turned_off))["result"] == "OPTED_OUT"
    assert (await wait_final_status(tenant, turned_on))["result"] == "DELIVERED"


async def test_an_opted_out_notification_is_announced_to_the_tenants_webhook(
    tenant: Tenant, sink: WebhookSink
) -> None:
    await ok_rpc(
        tenant,
        "manage/create-webhook",
        {"url": sink.hook_url, "events": ["notification.opted_out"]},
    )
    await _switch(tenant, "u1", channel="IN_APP", category="PROMOTIONAL", enabled=False)
    txn = await _send(tenant, "u1", "IN_APP", "PROMOTIONAL")
    await wait_final_status(tenant, txn)
    [request] = await sink.wait_for_requests(1, timeout_s=10)
    event = json.loads(request.body)
    assert event["type"] == "notification.opted_out"
    data = event["data"]
    assert (data["transactionId"], data["result"], data["failureReason"]) == (
        txn,
        "OPTED_OUT",
        "preference",
    )
    assert (data["channel"], data["category"]) == ("IN_APP", "PROMOTIONAL")
