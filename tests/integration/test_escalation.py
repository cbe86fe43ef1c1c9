"""Escalation, end to end with short delays: "in-app now, push later if unread, e-mail later
still if still unread". A step is due through the delay levels; when it is, the worker reads
the in-app message's read flag and cancels the step (reason `read`) if it was read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import configure_fcm, configure_sendgrid, ok_rpc
from tests.integration.workflow_support import (
    create_workflow,
    mark_read,
    push_device,
    step_rows,
    wait_steps_final,
    welcome,
)
from tests.support import System, Tenant, wait_for

PUSH_AFTER_S = 3
EMAIL_AFTER_S = 6
ESCALATION = welcome(
    name="Unread message",
    steps=[
        {"channel": "IN_APP", "title": "New message", "body": "{{ sender }} wrote to you"},
        {
            "channel": "PUSH",
            "title": "New message",
            "body": "{{ sender }} is waiting",
            "delaySeconds": PUSH_AFTER_S,
            "skipIfRead": 0,
        },
        {
            "channel": "EMAIL",
            "subject": "You have an unread message",
            "body": "{{ sender }} wrote to you",
            "delaySeconds": EMAIL_AFTER_S,
            "skipIfRead": 0,
        },
    ],
)


async def _setup(tenant: Tenant, fcm: FakeFcm, sendgrid: FakeSendGrid) -> str:
    await configure_fcm(tenant, fcm.url, fcm.service_account_json())
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u1", "subscriberData": {"email": "u1@example.com"}},
    )
    await push_device(tenant, "u1")
    workflow = await create_workflow(tenant, ESCALATION)
    triggered = await ok_rpc(
        tenant,
        "manage/trigger",
        {"workflowId": workflow["workflowId"], "userId": "u1", "payload": {"sender": "Ada"}},
    )
    return str(triggered["transactionId"])


async def _step(tenant: Tenant, transaction_id: str, step: int) -> dict[str, Any]:
    status = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": transaction_id})
    [row] = step_rows(status, step)
    return row


async def _wait_delivered(tenant: Tenant, transaction_id: str, step: int) -> dict[str, Any]:
    async def delivered() -> dict[str, Any] | None:
        row = await _step(tenant, transaction_id, step)
        return row if row["result"] == "DELIVERED" else None

    return await wait_for(delivered, timeout_s=20, what=f"step {step} delivered")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_read_in_time_cancels_the_later_steps(
    system: System, tenant: Tenant, fcm: FakeFcm, sendgrid: FakeSendGrid
) -> None:
    transaction_id = await _setup(tenant, fcm, sendgrid)
    in_app = await _wait_delivered(tenant, transaction_id, 0)
    await mark_read(system, tenant, in_app["notificationId"])

    status = await wait_steps_final(tenant, transaction_id, timeout_s=30)

    assert [(s["channel"], s["summary"]) for s in status["steps"]] == [
        ("IN_APP", {"DELIVERED": 1}),
        ("PUSH", {"CANCELLED": 1}),
        ("EMAIL", {"CANCELLED": 1}),
    ]
    assert {r["failureReason"] for i in (1, 2) for r in step_rows(status, i)} == {"read"}
    assert status["result"] == "DELIVERED"
    assert fcm.messages == []
    assert sendgrid.mails == []


async def test_unread_escalates_to_push_then_email_on_time(
    tenant: Tenant, fcm: FakeFcm, sendgrid: FakeSendGrid
) -> None:
    transaction_id = await _setup(tenant, fcm, sendgrid)
    status = await wait_steps_final(tenant, transaction_id, timeout_s=30)

    assert [s["summary"] for s in status["steps"]] == [{"DELIVERED": 1}] * 3
    start = _at(status["queuedAt"])
    push, email = step_rows(status, 1)[0], step_rows(status, 2)[0]
    assert (_at(push["deliverAt"]) - start).total_seconds() == PUSH_AFTER_S
    assert (_at(email["deliverAt"]) - start).total_seconds() == EMAIL_AFTER_S
    assert (_at(push["deliveredAt"]) - start).total_seconds() >= PUSH_AFTER_S
    assert (_at(email["deliveredAt"]) - start).total_seconds() >= EMAIL_AFTER_S
    assert [m["notification"]["body"] for m in fcm.messages] == ["Ada is waiting"]
    [mail] = sendgrid.mails
    assert mail["subject"] == "You have an unread message"


async def test_read_after_the_push_still_stops_the_email(
    system: System, tenant: Tenant, fcm: FakeFcm, sendgrid: FakeSendGrid
) -> None:
    transaction_id = await _setup(tenant, fcm, sendgrid)
    await _wait_delivered(tenant, transaction_id, 1)  # the push went out: unread so far
    in_app = await _step(tenant, transaction_id, 0)
    await mark_read(system, tenant, in_app["notificationId"])

    status = await wait_steps_final(tenant, transaction_id, timeout_s=30)
    assert [s["summary"] for s in status["steps"]] == [
        {"DELIVERED": 1},
        {"DELIVERED": 1},
        {"CANCELLED": 1},
    ]
    assert len(fcm.messages) == 1
    assert sendgrid.mails == []
