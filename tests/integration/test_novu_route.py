"""The Novu route end to end: sends, bulk, failover with SendGrid, IN_APP, mirroring, cancel,
inbox sessions — the real API, workers and broker against a fake Novu."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.providers.novu_jobs import queue_novu_cancel
from tests.fakes.novu import FakeNovu
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure,
    configure_sendgrid,
    ok_rpc,
    rpc,
    send_and_wait,
    wait_final_status,
)
from tests.support import System, Tenant, wait_for


@pytest.fixture
async def novu() -> AsyncIterator[FakeNovu]:
    """A fake Novu on 127.0.0.1 for one test."""
    async with FakeNovu() as fake:
        yield fake


async def _subscriber(tenant: Tenant, user: str, **data: Any) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user, "subscriberData": data})


async def _device(tenant: Tenant, user: str, token: str) -> None:
    await ok_rpc(
        tenant,
        "register-push-device",
        {"fcmToken": token, "platform": "ANDROID", "deviceId": f"dev-{token}"},
        headers=tenant.user_headers(user),
    )


async def test_push_through_novu_is_delivered_via_novu(tenant: Tenant, novu: FakeNovu) -> None:
    provider = await configure(tenant, "NOVU", novu.url, novu.credentials())
    assert (provider["channel"], provider["channels"]) == ("EMAIL", ["EMAIL", "IN_APP", "PUSH"])
    assert provider["credentials"]["apiKey"] == "********"
    await _subscriber(tenant, "u1", firstName="Ada", email="ada@example.com")
    await _device(tenant, "u1", "fcm-token-1")

    status = await send_and_wait(tenant, "u1", "PUSH", data={"screen": "home"})

    assert status["result"] == "DELIVERED"
    [attempt] = status["attempts"]
    assert (attempt["provider"], attempt["outcome"]) == ("NOVU", "DELIVERED")
    [event] = novu.triggers
    assert status["providerMessageId"] == event["transactionId"]
    assert event["name"] == "push-wf"
    assert event["to"]["subscriberId"] == "u1"
    assert event["to"]["firstName"] == "Ada"
    assert event["to"]["channels"] == [
        {"providerId": "fcm", "credentials": {"deviceTokens": ["fcm-token-1"]}}
    ]
    assert event["payload"]["title"] == "Hello"
    assert event["payload"]["data"] == {"screen": "home"}


@pytest.mark.parametrize(
    "status",
    ["no_workflow_steps_defined", "invalid_recipients", "error", "something_new"],
)
async def test_a_status_other_than_processed_fails_naming_it(
    tenant: Tenant, novu: FakeNovu, status: str
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    await _subscriber(tenant, "u1", email="ada@example.com")
    novu.statuses["u1"] = status

    result = await send_and_wait(tenant, "u1", "EMAIL")

    assert (result["result"], result["failureReason"]) == ("FAILED", status)
    assert len(result["attempts"]) == 1  # permanent: never retried
    assert len(novu.requests) == 1


async def test_5xx_and_429_are_retried_through_the_delay_levels(
    tenant: Tenant, novu: FakeNovu
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    await _subscriber(tenant, "u1", email="ada@example.com")
    novu.script_error(503, "Service Unavailable")
    novu.script_rate_limit(retry_after_s=1)

    result = await send_and_wait(tenant, "u1", "EMAIL")

    assert result["result"] == "DELIVERED"
    assert [a["outcome"] for a in result["attempts"]] == ["RETRY", "RATE_LIMITED", "DELIVERED"]
    keys = {r.headers["idempotency-key"] for r in novu.requests}
    assert len(keys) == 1  # every retry carries the same key: our notification id


async def test_bulk_goes_as_one_bulk_trigger_each_event_judged_alone(
    tenant: Tenant, novu: FakeNovu
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    users = [f"u{i}" for i in range(1, 9)]
    for user in users:
        await _subscriber(tenant, user, email=f"{user}@example.com")
    novu.statuses["u3"] = "invalid_recipients"
    novu.statuses["u6"] = "error"

    sent = await ok_rpc(
        tenant,
        "manage/send-bulk",
        {"userIds": users, "channel": "EMAIL", "content": {"title": "News", "body": "Hi"}},
    )
    status = await wait_final_status(tenant, sent["transactionId"])

    results = {r["userId"]: (r["result"], r.get("failureReason")) for r in status["recipients"]}
    assert results == {
        **{u: ("DELIVERED", None) for u in users},
        "u3": ("FAILED", "invalid_recipients"),
        "u6": ("FAILED", "error"),
    }
    paths = [r.path for r in novu.requests]
    # Siblings of a bulk wait for each other: bulk triggers only, fewer requests than users.
    assert set(paths) == {"/v1/events/trigger/bulk"}
    assert sum(novu.bulk_sizes) == len(users)
    assert len(novu.bulk_sizes) < len(users)


async def test_novu_first_with_sendgrid_as_fallback(
    tenant: Tenant, novu: FakeNovu, sendgrid: FakeSendGrid
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials(apiKey="nv-revoked"))
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY, priority=1)
    await _subscriber(tenant, "u1", email="ada@example.com")

    status = await send_and_wait(tenant, "u1", "EMAIL")

    assert status["result"] == "DELIVERED"
    assert [(a["provider"], a["outcome"]) for a in status["attempts"]] == [
        ("NOVU", "PROVIDER_AUTH"),
        ("SENDGRID", "DELIVERED"),
    ]
    assert len(sendgrid.mails) == 1
    assert novu.triggers == []


async def test_sendgrid_first_with_novu_as_fallback(
    tenant: Tenant, novu: FakeNovu, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, "SG.revoked")
    await configure(tenant, "NOVU", novu.url, novu.credentials(), priority=1)
    await _subscriber(tenant, "u1", email="ada@example.com")

    status = await send_and_wait(tenant, "u1", "EMAIL")

    assert [(a["provider"], a["outcome"]) for a in status["attempts"]] == [
        ("SENDGRID", "PROVIDER_AUTH"),
        ("NOVU", "DELIVERED"),
    ]
    assert len(novu.triggers) == 1


async def test_in_app_through_novu_skips_our_inbox(tenant: Tenant, novu: FakeNovu) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    await _subscriber(tenant, "u1")

    status = await send_and_wait(tenant, "u1", "IN_APP")

    assert (status["result"], status["attempts"][0]["provider"]) == ("DELIVERED", "NOVU")
    assert novu.triggers[0]["name"] == "in-app-wf"
    feed = await ok_rpc(tenant, "get-inbox-feed", {}, headers=tenant.user_headers("u1"))
    assert feed["messages"] == []  # Novu's inbox holds it, not ours

    # get-inbox-session answers Novu's session, so Novu's inbox clients keep working.
    session = await ok_rpc(tenant, "get-inbox-session", {}, headers=tenant.user_headers("u1"))
    assert session["sessionToken"].startswith("novu-session-")
    assert (session["apiUrl"], session["wsUrl"]) == (novu.url, novu.url)
    [opened] = novu.sessions
    assert (opened["applicationIdentifier"], opened["subscriberId"]) == (
        "app-fake-identifier",
        "u1",
    )


async def test_a_tenant_without_novu_in_app_gets_our_own_session(
    tenant: Tenant, novu: FakeNovu
) -> None:
    credentials = novu.credentials(workflowIds={"PUSH": "push-wf"})
    await configure(tenant, "NOVU", novu.url, credentials)
    session = await ok_rpc(tenant, "get-inbox-session", {}, headers=tenant.user_headers("u1"))
    assert session["sessionToken"].startswith("eyJ")
    assert novu.sessions == []


async def test_novu_session_outage_is_a_503(tenant: Tenant, novu: FakeNovu) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    novu.script_error(503, "down", route="session")
    answer = await rpc(tenant, "get-inbox-session", {}, headers=tenant.user_headers("u1"))
    assert answer.status_code == 503


async def test_subscriber_changes_are_mirrored_through_the_queue(
    tenant: Tenant, novu: FakeNovu
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials())
    await _subscriber(tenant, "u1", email="ada@example.com")
    # Novu is down when the change is made: the RPC answers anyway, the mirror retries.
    novu.script_error(503, "down", route="subscriber", times=2)
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"email": "ada@example.org", "firstName": "Ada"}},
    )

    async def mirrored() -> dict[str, Any] | None:
        return novu.subscribers.get("u1")

    copy = await wait_for(mirrored, timeout_s=20, what="the subscriber mirrored to Novu")
    assert (copy["email"], copy["firstName"]) == ("ada@example.org", "Ada")
    methods = [(r.method, r.path) for r in novu.requests]
    assert methods[:2] == [("PUT", "/v1/subscribers/u1")] * 2  # the two refused tries
    assert methods[-2:] == [("PUT", "/v1/subscribers/u1"), ("POST", "/v1/subscribers")]

    await ok_rpc(tenant, "manage/delete-subscriber", {"userId": "u1"})

    async def deleted() -> bool:
        return novu.deleted_subscribers == ["u1"]

    await wait_for(deleted, timeout_s=15, what="the subscriber deleted at Novu")


async def test_no_mirroring_for_a_tenant_without_novu(tenant: Tenant, novu: FakeNovu) -> None:
    await _subscriber(tenant, "u1", email="ada@example.com")
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"email": "ada@example.org"}},
    )
    assert novu.requests == []


async def test_cancel_at_novu_for_records_that_went_through_it(
    tenant: Tenant, novu: FakeNovu, sendgrid: FakeSendGrid, system: System
) -> None:
    await configure(tenant, "NOVU", novu.url, novu.credentials(workflowIds={"PUSH": "push-wf"}))
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await _subscriber(tenant, "u1", email="ada@example.com")
    await _device(tenant, "u1", "fcm-token-1")
    via_novu = await send_and_wait(tenant, "u1", "PUSH")
    via_sendgrid = await send_and_wait(tenant, "u1", "EMAIL")
    assert system.db is not None
    records = [
        r
        for status in (via_novu, via_sendgrid)
        for r in await system.db.notifications.find_by_transaction(
            tenant_id=tenant.tenant_id, transaction_id=status["transactionId"]
        )
    ]
    novu.script_error(500, "oops", route="cancel")  # the first try fails: retried

    queued = await queue_novu_cancel(
        providers=system.db.providers,
        broker=system.workers[0].ctx.broker,  # type: ignore[union-attr]
        tenant_id=tenant.tenant_id,
        records=records,
    )

    assert queued == 1  # only the record Novu handled
    novu_record = next(r for r in records if r.provider == "NOVU")

    # manage/cancel does the same for a transaction whose records went through Novu: the
    # record is already DELIVERED here (409: nothing left locally), and Novu is told anyway.
    answer = await rpc(tenant, "manage/cancel", {"transactionId": via_novu["transactionId"]})
    assert answer.status_code == 409

    async def cancelled() -> bool:
        return novu.cancelled == [novu_record.id, novu_record.id]

    await wait_for(cancelled, timeout_s=15, what="the transaction cancelled at Novu, twice")
    assert len(novu.requests_to(f"/v1/events/trigger/{novu_record.id}")) == 3


async def test_novu_credentials_are_checked(tenant: Tenant) -> None:
    answer = await rpc(
        tenant,
        "manage/configure-provider",
        {"providerType": "NOVU", "credentials": {"workflowIds": {"FAX": "x"}}},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == [
        "credentials.apiKey is required for NOVU",
        "credentials.workflowIds has FAX, not a channel (CHAT, EMAIL, IN_APP, PUSH, SMS)",
    ]
