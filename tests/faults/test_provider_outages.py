"""A provider that fails for a while, one that rate-limits, with real worker processes."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import pytest

from shared.db.client import Database
from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, send_stream
from tests.faults.report import tally
from tests.faults.steps import (
    SEND,
    accepted_mails,
    all_records,
    delivered_labels,
    email_body,
    provider_calls,
    setup_email,
    wait_all_delivered,
)
from tests.support import wait_for

pytestmark = pytest.mark.timeout(180)


async def test_provider_503_for_a_while_then_recovered_delivers_everything_once(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Provider answering 503 for a while (the circuit opens, then everything goes once)."""
    system = make_system(NOTIFY_RETRY_MAX_ATTEMPTS="6", NOTIFY_CIRCUIT_FAILURE_THRESHOLD="5")
    system.start_worker("email")
    system.start_worker("maintenance")
    await system.start_api()
    sends = 100
    async with system.open_database() as db:
        async with system.client() as client:
            await setup_email(client, sendgrid)
            sendgrid.script_error(503, "Service Unavailable", times=100_000)
            results = await send_stream(
                client, [email_body(f"m{i}") for i in range(sends)], concurrency=10, path=SEND
            )
        assert [status for status, _ in results] == [200] * sends
        # The outage lasts until the open circuit has held messages back.
        await wait_for(
            functools.partial(_circuit_waits, db),
            timeout_s=20,
            what="the circuit to hold messages back",
        )
        failed_calls = len(sendgrid.requests)
        sendgrid.clear_scripts()

        ids = {d["_id"] for d in await all_records(db)}
        delivered = await wait_all_delivered(db, ids, timeout_s=60)
        mails = accepted_mails(sendgrid)
        counts = tally(
            acknowledged=[f"m{i}" for i, (status, _) in enumerate(results) if status == 200],
            unacknowledged=[f"m{i}" for i, (status, _) in enumerate(results) if status != 200],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            records_delivered=len(delivered),
            provider_calls=sum(provider_calls(sendgrid).values()),
            calls_refused_with_503=failed_calls,
            circuit_waits=sum(d.get("circuit_waits", 0) for d in delivered),
            max_attempts_used=max(d["attempt_count"] for d in delivered),
            delivered_twice=sum(1 for n in mails.values() if n > 1),
        )
        assert len(delivered) == sends
        assert sorted(mails.values()) == [1] * sends
        # The circuit held most of them back instead of hammering the failing provider.
        assert sum(d.get("circuit_waits", 0) for d in delivered) > 0
        assert failed_calls < sends * 3


async def test_429_with_retry_after_3_is_not_retried_before_3_s(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Provider answering 429 with Retry-After: 3 (no retry before 3 s)."""
    system = make_system()
    system.start_worker("email")
    await system.start_api()
    async with system.open_database() as db:
        async with system.client() as client:
            await setup_email(client, sendgrid)
            sendgrid.script_error(429, "too many requests", headers={"Retry-After": "3"}, times=2)
            response = await client.post(SEND, json=email_body("limited"))
            assert response.status_code == 200
        ids = {d["_id"] for d in await all_records(db)}
        [record] = await wait_all_delivered(db, ids, timeout_s=30)
        arrivals = [r.received_at for r in sendgrid.requests]
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(arrivals)]
        counts = tally(
            acknowledged=["limited"], unacknowledged=[], deliveries=delivered_labels(sendgrid)
        )
        fault_report(
            **counts.columns(),
            provider_calls=len(arrivals),
            gaps_between_attempts_s=gaps,
            outcomes=[a["outcome"] for a in record["attempts"]],
        )
        assert [a["outcome"] for a in record["attempts"]] == [
            "RATE_LIMITED",
            "RATE_LIMITED",
            "DELIVERED",
        ]
        assert all(gap >= 3.0 for gap in gaps)


async def _circuit_waits(db: Database) -> int:
    return sum(d.get("circuit_waits", 0) for d in await all_records(db))
