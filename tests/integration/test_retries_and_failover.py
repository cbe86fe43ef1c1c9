"""Retries with backoff, Retry-After, dead letters, and failover between two providers."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from shared.db.base import Doc
from shared.domain import Channel
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure_sendgrid,
    dead_letters,
    ok_rpc,
    wait_final_status,
)
from tests.support import System, Tenant


async def _email_user(tenant: Tenant, sendgrid: FakeSendGrid, **extra: Any) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY, **extra)
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )


async def _send(tenant: Tenant, body: str = "x") -> str:
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "EMAIL", "content": {"title": "T", "body": body}},
    )
    return str(sent["transactionId"])


async def _record(system: System, tenant: Tenant, transaction_id: str) -> Doc:
    """The transaction's one record, exactly as stored."""
    assert system.db is not None
    [record] = await system.db.notifications.col.find(
        {"tenant_id": tenant.tenant_id, "transaction_id": transaction_id}
    ).to_list()
    return record


async def _dead_letter_of(settings: Settings, notification_id: str) -> dict[str, Any]:
    letters = await dead_letters(settings.rabbitmq_url, Topology(settings.prefix), Channel.EMAIL)
    mine = [h for h, body in letters if body["notification_id"] == notification_id]
    assert len(mine) == 1, f"{len(mine)} dead letters for {notification_id}"
    return mine[0]


async def test_transient_failures_are_retried_with_backoff_then_delivered(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(503, "Service Unavailable", times=2)
    txn = await _send(tenant)
    status = await wait_final_status(tenant, txn)
    assert status["result"] == "DELIVERED"
    assert [a["outcome"] for a in status["attempts"]] == ["RETRY", "RETRY", "DELIVERED"]
    assert [a["attempt"] for a in status["attempts"]] == [1, 2, 3]
    arrivals = [r.received_at for r in sendgrid.requests]
    assert len(arrivals) == 3
    assert len(sendgrid.mails) == 1
    # The delay levels count whole seconds: no retry comes sooner than 1 s.
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(arrivals))
    record = await _record(system, tenant, txn)
    assert record["attempt_count"] == 3
    assert "dead_lettered_at" not in record


async def test_retry_after_is_honoured(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(429, "too many requests", headers={"Retry-After": "3"})
    status = await wait_final_status(tenant, await _send(tenant))
    assert status["result"] == "DELIVERED"
    first, second = (r.received_at for r in sendgrid.requests)
    assert second - first >= 3.0, f"second attempt after {second - first:.2f} s"
    assert [a["outcome"] for a in status["attempts"]] == ["RATE_LIMITED", "DELIVERED"]


async def test_spent_retries_end_failed_and_in_the_dlq_with_the_reason(
    settings: Settings, system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(503, "Service Unavailable", times=3)
    txn = await _send(tenant)
    status = await wait_final_status(tenant, txn)
    assert status["result"] == "FAILED"
    assert status["failureReason"] == "retries_exhausted"
    assert len(sendgrid.requests) == 3
    assert sendgrid.mails == []
    record = await _record(system, tenant, txn)
    assert record["dead_lettered_at"]
    headers = await _dead_letter_of(settings, record["_id"])
    assert headers["x-failure-reason"] == "retries_exhausted"
    assert "server_error" in headers["x-failure-detail"]
    assert headers["x-attempts"] == 3
    assert headers["x-original-queue"] == Topology(settings.prefix).queue(Channel.EMAIL)
    assert headers["x-tenant-id"] == tenant.tenant_id
    assert headers["x-transaction-id"] == txn
    assert headers["x-failed-at"].endswith("Z")


async def test_permanent_refusal_goes_to_the_dlq_at_once(
    settings: Settings, system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(400, "The from address does not match a verified Sender Identity.")
    txn = await _send(tenant)
    status = await wait_final_status(tenant, txn)
    assert status["result"] == "FAILED"
    assert len(sendgrid.requests) == 1
    record = await _record(system, tenant, txn)
    headers = await _dead_letter_of(settings, record["_id"])
    assert headers["x-failure-reason"] == "bad_request"
    assert "verified Sender Identity" in headers["x-failure-detail"]
    assert headers["x-attempts"] == 1


async def test_failover_to_the_backup_provider_while_the_primary_circuit_is_open(
    system: System, tenant: Tenant
) -> None:
    async with FakeSendGrid() as primary, FakeSendGrid() as backup:
        await _email_user(tenant, primary, providerId="sg-primary", priority=0)
        await configure_sendgrid(
            tenant, backup.url, DEFAULT_API_KEY, providerId="sg-backup", priority=1
        )
        listed = await ok_rpc(tenant, "manage/get-providers", {})
        assert [(p["providerId"], p["priority"]) for p in listed["providers"]] == [
            ("sg-primary", 0),
            ("sg-backup", 1),
        ]
        primary.script_error(503, "Service Unavailable", times=100)

        # Three failures in a row open the primary's circuit; that message moves on at once.
        first = await wait_final_status(tenant, await _send(tenant, "m1"))
        assert first["result"] == "DELIVERED"
        assert [(a["provider"], a["outcome"]) for a in first["attempts"]] == [
            ("sg-primary", "RETRY"),
            ("sg-primary", "RETRY"),
            ("sg-primary", "RETRY"),
            ("sg-backup", "DELIVERED"),
        ]
        # While it is open, the next messages go straight to the backup.
        for body in ("m2", "m3"):
            status = await wait_final_status(tenant, await _send(tenant, body))
            assert [a["provider"] for a in status["attempts"]] == ["sg-backup"]
        assert len(primary.requests) == 3
        assert [m["content"][0]["value"] for m in backup.mails] == ["m1", "m2", "m3"]

        # The primary recovers; after the cool-down a probe finds it and closes the circuit.
        primary.clear_scripts()
        await asyncio.sleep(3.2)
        last = await wait_final_status(tenant, await _send(tenant, "m4"))
        assert [a["provider"] for a in last["attempts"]] == ["sg-primary"]
        assert len(primary.mails) == 1
        assert len(backup.mails) == 3


async def test_an_open_circuit_without_fallback_makes_messages_wait_not_fail(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await _email_user(tenant, sendgrid)
    sendgrid.script_error(503, "Service Unavailable", times=3)
    txns = await asyncio.gather(*(_send(tenant, f"m{i}") for i in range(3)))
    statuses = await asyncio.gather(*(wait_final_status(tenant, t) for t in txns))
    assert [s["result"] for s in statuses] == ["DELIVERED"] * 3
    records = [await _record(system, tenant, t) for t in txns]
    # One failed attempt each opened the circuit; waiting for it cost no attempt.
    assert [r["attempt_count"] for r in records] == [2, 2, 2]
    assert sum(r.get("circuit_waits", 0) for r in records) >= 3
    assert len(sendgrid.requests) == 6
    assert len(sendgrid.mails) == 3
