"""kill -9 of the API and of a worker at their worst moments; SIGTERM while busy."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, kill9
from tests.faults.report import tally
from tests.faults.steps import (
    SEND,
    accepted_mails,
    all_records,
    delivered_labels,
    email_body,
    provider_calls,
    sends_held_at_the_provider,
    setup_email,
    wait_all_delivered,
)

pytestmark = pytest.mark.timeout(180)


async def test_api_killed_between_record_and_publish_is_sent_by_the_sweep(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """API kill -9 between the record write and the publish (the sweep sends them)."""
    system = make_system()
    system.start_worker("email")
    api = await system.start_api()
    crashes = 3
    no_answer = 0
    async with system.open_database() as db:
        async with system.client() as client:
            await setup_email(client, sendgrid)
            api.stop()
            for i in range(crashes):
                api = await system.start_api(module="tests.faults.failpoint_api")
                try:
                    response = await client.post(SEND, json=email_body(f"crash-{i}"))
                except httpx.HTTPError:
                    no_answer += 1
                else:
                    raise AssertionError(f"the API answered {response.status_code}")
                assert await api.wait_exit(10) == -signal.SIGKILL
        stored = await all_records(db)
        assert len(stored) == crashes
        assert all(d["status"] == "QUEUED" and "enqueued_at" not in d for d in stored)

        # No API runs now: only the maintenance sweep can publish them.
        system.start_worker("maintenance")
        delivered = await wait_all_delivered(db, {d["_id"] for d in stored}, timeout_s=30)
        calls = provider_calls(sendgrid)
        counts = tally(
            acknowledged=[],
            unacknowledged=[f"crash-{i}" for i in range(crashes)],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            no_answer=no_answer,
            records=len(stored),
            records_delivered=len(delivered),
            provider_calls=sum(calls.values()),
        )
        assert counts.recovered == crashes  # never answered, yet every one delivered once
        assert no_answer == crashes
        assert all(d.get("sweeps", 0) == 0 for d in delivered)  # taken as unpublished
        assert sorted(calls.values()) == [1] * crashes


async def test_worker_killed_during_the_provider_call_is_redelivered_once(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Worker kill -9 during the provider call (redelivered; the provider saw it twice)."""
    system = make_system()
    first = system.start_worker("email", name="worker-email-1")
    system.start_worker("maintenance")
    await system.start_api()
    sends = 5
    async with system.open_database() as db, system.client() as client:
        await sends_held_at_the_provider(client, sendgrid, sends)
        kill9(first)
        assert await first.wait_exit(10) == -signal.SIGKILL
        sendgrid.release()  # the fake still accepts these: they are the crash window's sends
        await sendgrid.wait_for_requests(sends, timeout_s=5)
        system.start_worker("email", name="worker-email-2")

        ids = {d["_id"] for d in await all_records(db)}
        delivered = await wait_all_delivered(db, ids, timeout_s=40)
        calls_at_outcome = provider_calls(sendgrid)
        await system.wait_queues_drained()  # nothing left that could send again
        calls = provider_calls(sendgrid)
        window_duplicates = sum(n - 1 for n in calls_at_outcome.values())
        counts = tally(
            acknowledged=[f"m{i}" for i in range(sends)],
            unacknowledged=[],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            records_delivered=len(delivered),
            provider_calls=sum(calls.values()),
            provider_duplicates_from_crash_window=window_duplicates,
            duplicates_after_outcome=sum(calls.values()) - sum(calls_at_outcome.values()),
            mails_accepted=sum(accepted_mails(sendgrid).values()),
        )
        # The fake accepted each held mail although its caller was dead, as a provider may:
        # the worker could not know, so each is sent again (`duplicated` = the calls cut off).
        assert counts.lost == 0
        assert len(delivered) == sends
        # Killed mid-call, each was sent once by the dead worker and once after redelivery.
        assert sorted(calls.values()) == [2] * sends
        assert calls == calls_at_outcome
        assert all(d["attempts"][-1]["outcome"] == "DELIVERED" for d in delivered)


async def test_sigterm_lets_in_flight_deliveries_finish_then_exits(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Worker SIGTERM with deliveries in flight (they finish, then it exits)."""
    system = make_system()
    worker = system.start_worker("email")
    await system.start_api()
    sends = 3
    async with system.open_database() as db, system.client() as client:
        await sends_held_at_the_provider(client, sendgrid, sends)
        worker.signal(signal.SIGTERM)
        await worker.wait_logged("worker_draining")
        still_running = worker.alive
        sendgrid.release()
        exit_code = await worker.wait_exit(15)
        statuses = sorted(d["status"] for d in await all_records(db))
        counts = tally(
            acknowledged=[f"m{i}" for i in range(sends)],
            unacknowledged=[],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            in_flight_at_sigterm=sends,
            alive_while_draining=still_running,
            exit_code=exit_code,
            delivered_before_exit=statuses.count("DELIVERED"),
            provider_calls=sum(provider_calls(sendgrid).values()),
        )
        assert still_running
        assert exit_code == 0
        assert statuses == ["DELIVERED"] * sends


async def test_sigterm_past_the_deadline_hands_the_work_back(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Worker SIGTERM past its shutdown deadline (the work is handed back)."""
    system = make_system()
    worker = system.start_worker("email", NOTIFY_SHUTDOWN_TIMEOUT_S="1")
    await system.start_api()
    sends = 2
    async with system.open_database() as db, system.client() as client:
        await sends_held_at_the_provider(client, sendgrid, sends)
        worker.signal(signal.SIGTERM)
        exit_code = await worker.wait_exit(10)
        handed_back: list[dict[str, Any]] = await all_records(db)
        statuses = sorted(d["status"] for d in handed_back)
        sendgrid.release()
        system.start_worker("email", name="worker-email-2")
        delivered = await wait_all_delivered(db, {d["_id"] for d in handed_back}, timeout_s=20)
        counts = tally(
            acknowledged=[f"m{i}" for i in range(sends)],
            unacknowledged=[],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            in_flight_at_sigterm=sends,
            exit_code=exit_code,
            records_handed_back_queued=statuses.count("QUEUED"),
            delivered_by_next_worker=len(delivered),
            provider_calls=sum(provider_calls(sendgrid).values()),
        )
        assert exit_code == 0
        assert statuses == ["QUEUED"] * sends  # released, not left to the lease
        assert len(delivered) == sends
