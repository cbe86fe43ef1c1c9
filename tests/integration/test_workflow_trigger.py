"""`manage/trigger`: a workflow run for a user or a list, through the normal pipeline; inactive,
critical and channel-default rules; audience validation; per-step delivery status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fcm import FakeFcm
from tests.integration.helpers import configure_fcm, ok_rpc, rpc
from tests.integration.workflow_support import (
    WELCOME,
    create_workflow,
    in_app_user,
    push_device,
    step_rows,
    wait_steps_final,
    welcome,
)
from tests.support import System, Tenant


async def _records(system: System, tenant: Tenant) -> list[dict[str, Any]]:
    assert system.db is not None
    return [d async for d in system.db.notifications.col.find({"tenant_id": tenant.tenant_id})]


async def test_the_seed_workflow_delivers_its_in_app_and_push_steps(
    system: System, tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    workflow = await create_workflow(tenant, WELCOME)

    triggered = await ok_rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    status = await wait_steps_final(tenant, triggered["transactionId"])

    assert triggered == {"transactionId": status["transactionId"], "recipientCount": 1}
    assert status["result"] == "DELIVERED"
    assert (status["workflowId"], status["workflowKey"], status["workflowVersion"]) == (
        workflow["workflowId"],
        "welcome-notification",
        1,
    )
    assert [(s["step"], s["channel"], s["summary"]) for s in status["steps"]] == [
        (0, "IN_APP", {"DELIVERED": 1}),
        (1, "PUSH", {"DELIVERED": 1}),
    ]
    [in_app] = step_rows(status, 0)
    assert system.db is not None
    [item] = await system.db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id="u1")
    assert (item["notification_id"], item["title"], item["body"]) == (
        in_app["notificationId"],
        "Welcome!",
        "Welcome to your health coaching journey",
    )
    [push] = fcm.messages
    assert push["notification"] == {"title": "Welcome!", "body": "Tap to start your first session"}
    assert step_rows(status, 1)[0]["providerMessageId"] == fcm.message_names[0]


async def test_trigger_by_key_to_a_list_makes_one_notification_per_user_and_step(
    system: System, tenant: Tenant
) -> None:
    for user in ("a", "b", "c"):
        await in_app_user(tenant, user)
    steps = [
        {"channel": "IN_APP", "title": "Hi {{ name }}", "body": "Order {{ order.id }} shipped"},
        {"channel": "IN_APP", "body": "{{ payload.order.id }} again"},
    ]
    await create_workflow(tenant, welcome(name="Order Shipped", steps=steps))

    triggered = await ok_rpc(
        tenant,
        "manage/trigger",
        {
            "workflowKey": "order-shipped",
            "userIds": ["a", "b", "a", "c"],
            "payload": {"name": "Ada", "order": {"id": "o-7"}},
        },
    )
    assert triggered["recipientCount"] == 3
    status = await wait_steps_final(tenant, triggered["transactionId"])

    assert status["result"] == "DELIVERED"
    for index in (0, 1):
        assert sorted(r["userId"] for r in step_rows(status, index)) == ["a", "b", "c"]
    records = await _records(system, tenant)
    assert len(records) == 6
    assert {r["transaction_id"] for r in records} == {triggered["transactionId"]}
    contents = {(r["recipient"], r["workflow"]["step"]): r["content"] for r in records}
    assert contents[("b", 0)]["title"] == "Hi Ada"
    assert contents[("b", 0)]["body"] == "Order o-7 shipped"
    assert contents[("c", 1)]["body"] == "o-7 again"


async def test_a_missing_payload_variable_is_400_naming_the_step_and_nothing_is_sent(
    system: System, tenant: Tenant
) -> None:
    steps = [
        {"channel": "IN_APP", "body": "fine"},
        {"channel": "IN_APP", "title": "{{ who }}", "body": "{{ what }} and {{ who }}"},
    ]
    workflow = await create_workflow(tenant, welcome(steps=steps))
    response = await rpc(
        tenant,
        "manage/trigger",
        {"workflowId": workflow["workflowId"], "userId": "u1", "payload": {"what": "x"}},
    )
    assert response.status_code == 400
    assert response.json()["error"] == [
        "payload.who is required by workflow welcome-notification step 1"
    ]
    assert await _records(system, tenant) == []


async def test_an_inactive_workflow_is_409_and_sends_nothing(
    system: System, tenant: Tenant
) -> None:
    workflow = await create_workflow(tenant, welcome(active=False))
    response = await rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == [
        "workflow welcome-notification is inactive: nothing was sent"
    ]
    assert await _records(system, tenant) == []


async def test_unknown_or_deleted_workflows_are_404(tenant: Tenant) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    await ok_rpc(tenant, "manage/delete-workflow", {"workflowId": workflow["workflowId"]})
    for body, name in (
        ({"workflowId": workflow["workflowId"]}, workflow["workflowId"]),
        ({"workflowKey": "welcome-notification"}, "welcome-notification"),
        ({"workflowKey": "nope"}, "nope"),
    ):
        response = await rpc(tenant, "manage/trigger", {**body, "userId": "u1"})
        assert response.status_code == 404, response.text
        assert response.json()["error"] == [f"workflow {name} does not exist in development"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"userId": "u1"}, "exactly one of workflowId and workflowKey is required"),
        (
            {"workflowId": "wf_x", "workflowKey": "k", "userId": "u1"},
            "exactly one of workflowId and workflowKey is required",
        ),
        ({"workflowKey": "k"}, "exactly one of userId, userIds and topicKey is required"),
        (
            {"workflowKey": "k", "userId": "u1", "userIds": ["u2"]},
            "exactly one of userId, userIds and topicKey is required",
        ),
        (
            {"workflowKey": "k", "userIds": [f"u{i}" for i in range(101)]},
            "userIds must contain at most 100 items",
        ),
        ({"workflowKey": "k", "userIds": []}, "userIds must contain at least 1 items"),
        ({"workflowKey": "k", "userId": "u1", "payload": []}, "payload must be an object"),
    ],
)
async def test_the_audience_is_validated(tenant: Tenant, body: dict[str, Any], error: str) -> None:
    response = await rpc(tenant, "manage/trigger", body)
    assert response.status_code == 400, response.text
    assert error in response.json()["error"]


async def test_a_topic_trigger_needs_an_existing_topic(tenant: Tenant) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    response = await rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "topicKey": "news"}
    )
    assert response.status_code == 404
    assert "topic news does not exist" in response.json()["error"]


async def test_the_same_idempotency_key_answers_the_first_transaction(
    system: System, tenant: Tenant
) -> None:
    await in_app_user(tenant, "u1")
    workflow = await create_workflow(tenant, WELCOME)
    body = {"workflowId": workflow["workflowId"], "userId": "u1", "idempotencyKey": "signup-u1"}
    first = await ok_rpc(tenant, "manage/trigger", body)
    second = await ok_rpc(tenant, "manage/trigger", body)
    assert first["transactionId"] == second["transactionId"]
    assert len(await _records(system, tenant)) == 2


async def test_a_channel_the_workflow_turns_off_is_opted_out_without_a_send(
    system: System, tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    settings = {**WELCOME["preferenceSettings"], "push": False}
    workflow = await create_workflow(tenant, welcome(preferenceSettings=settings))
    triggered = await ok_rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    status = await wait_steps_final(tenant, triggered["transactionId"])

    [push] = step_rows(status, 1)
    assert (push["result"], push["failureReason"]) == ("OPTED_OUT", "workflow_channel_off")
    assert step_rows(status, 0)[0]["result"] == "DELIVERED"
    assert status["result"] == "DELIVERED"  # the user was reached (in-app)
    assert fcm.messages == []
    assert system.db is not None
    stored = await system.db.notifications.get(
        tenant_id=tenant.tenant_id, notification_id=push["notificationId"]
    )
    assert stored is not None
    assert stored.enqueued_at is None


async def test_a_critical_workflow_ignores_its_channel_defaults_and_marks_its_records(
    system: System, tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    settings = {**WELCOME["preferenceSettings"], "push": False}
    workflow = await create_workflow(
        tenant, welcome(critical=True, preferenceSettings=settings, name="Security alert")
    )
    triggered = await ok_rpc(
        tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    status = await wait_steps_final(tenant, triggered["transactionId"])

    assert [s["summary"] for s in status["steps"]] == [{"DELIVERED": 1}, {"DELIVERED": 1}]
    assert len(fcm.messages) == 1
    assert {r["critical"] for r in await _records(system, tenant)} == {True}


async def _disable_push(tenant: Tenant, user: str) -> None:
    await ok_rpc(
        tenant,
        "update-preferences",
        {"channel": "PUSH", "enabled": False},
        headers=tenant.user_headers(user),
    )


async def test_a_critical_workflow_bypasses_the_users_preferences(
    tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await push_device(tenant, "u1")
    await _disable_push(tenant, "u1")
    steps = [{"channel": "PUSH", "title": "Alert", "body": "New sign-in"}]
    critical = await create_workflow(tenant, welcome(name="Alert", critical=True, steps=steps))
    normal = await create_workflow(tenant, welcome(name="Tips", steps=steps))

    outcomes = []
    for workflow in (critical, normal):
        triggered = await ok_rpc(
            tenant, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
        )
        status = await wait_steps_final(tenant, triggered["transactionId"])
        outcomes.append(step_rows(status, 0)[0]["result"])
    assert outcomes == ["DELIVERED", "OPTED_OUT"]
    assert len(fcm.messages) == 1


async def test_a_channel_off_by_workflow_default_reaches_a_user_who_enabled_it(
    tenant: Tenant, fcm: FakeFcm
) -> None:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    for user in ("keen", "quiet"):
        await push_device(tenant, user, f"token-{user}")
    await ok_rpc(
        tenant,
        "update-preferences",
        {"channel": "PUSH", "enabled": True},
        headers=tenant.user_headers("keen"),
    )
    settings = {**WELCOME["preferenceSettings"], "push": False}
    steps = [{"channel": "PUSH", "title": "Digest", "body": "Your week"}]
    workflow = await create_workflow(tenant, welcome(steps=steps, preferenceSettings=settings))
    triggered = await ok_rpc(
        tenant,
        "manage/trigger",
        {"workflowId": workflow["workflowId"], "userIds": ["keen", "quiet"]},
    )
    status = await wait_steps_final(tenant, triggered["transactionId"])
    results = {r["userId"]: r["result"] for r in step_rows(status, 0)}
    assert results == {"keen": "DELIVERED", "quiet": "OPTED_OUT"}
