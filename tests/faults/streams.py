"""A paced stream of requests with a fault in the middle, and its jepsen-style count.

Used by the broker and database restarts and the RabbitMQ cluster test: every request is
answered 200 or 503 (never a hang, never a 500), and every 200 is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, send_stream
from tests.faults.report import Tally, tally
from tests.faults.steps import (
    SEND,
    all_records,
    delivered_labels,
    email_body,
    provider_calls,
    setup_email,
    wait_all_delivered,
)

LANES = 16  # requests in flight at once


@dataclass(frozen=True, slots=True)
class Stream:
    """The answers to a stream of `manage/send` requests labelled `m0`, `m1`, … in order."""

    results: list[tuple[int, dict[str, Any]]]
    answered_at: list[float]  # time.monotonic() when each request's answer had come

    @property
    def statuses(self) -> list[int]:
        """Each request's status code (0 for no answer)."""
        return [status for status, _ in self.results]

    @property
    def ok(self) -> int:
        """Requests answered 200: acknowledged."""
        return self.statuses.count(200)

    @property
    def unavailable(self) -> int:
        """Requests answered 503."""
        return self.statuses.count(503)

    @property
    def other(self) -> list[int]:
        """Status codes other than 200 and 503 (none allowed)."""
        return [s for s in self.statuses if s not in (200, 503)]

    @property
    def ok_at_the_end(self) -> int:
        """200s among the last lane's worth of requests: the system is back."""
        return self.statuses[-LANES:].count(200)

    def ok_between(self, start: float, end: float) -> int:
        """200s answered between two `time.monotonic()` readings."""
        return sum(
            1
            for status, at in zip(self.statuses, self.answered_at, strict=True)
            if status == 200 and start <= at <= end
        )

    def labels(self, *, acknowledged: bool) -> list[str]:
        """Labels of the requests answered 200 (or of the others)."""
        return [f"m{i}" for i, s in enumerate(self.statuses) if (s == 200) is acknowledged]


async def stream_through(
    system: ProcessSystem,
    sendgrid: FakeSendGrid,
    *,
    requests: int,
    per_second: float,
    outage_after: int,
    outage: Callable[[], Awaitable[None]],
    urgent_every: int = 0,
) -> Stream:
    """Send `requests` at a steady rate, run `outage` once `outage_after` are answered.

    With `urgent_every` = n, every n-th request has priority 5 (the others 1).
    """
    async with system.client(timeout_s=30) as client:
        await setup_email(client, sendgrid)
        bodies = [email_body(f"m{i}") for i in range(requests)]
        if urgent_every:
            for i, body in enumerate(bodies):
                body["priority"] = 5 if i % urgent_every == 0 else 1
        started = time.monotonic()
        under_way = asyncio.Event()

        results: list[tuple[int, dict[str, Any]]] = []
        answered_at: list[float] = []

        async def paced() -> None:
            for offset in range(0, requests, LANES):
                due = started + offset / per_second
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # the pace, not a wait
                batch = await send_stream(
                    client, bodies[offset : offset + LANES], concurrency=LANES, path=SEND
                )
                results.extend(batch)
                answered_at.extend([time.monotonic()] * len(batch))
                if len(results) >= outage_after:
                    under_way.set()

        async def fault() -> None:
            await under_way.wait()
            await outage()

        await asyncio.gather(paced(), fault())
    return Stream(results, answered_at)


async def settle_and_count(
    system: ProcessSystem,
    sendgrid: FakeSendGrid,
    stream: Stream,
    fault_report: Callable[..., None],
    *,
    deliver_timeout_s: float = 90,
    **extra: object,
) -> Tally:
    """Wait until every 200 is delivered and the queues are empty; count and report (with
    the caller's `extra` counts)."""
    async with system.open_database() as db:
        accepted = {body["transactionId"] for status, body in stream.results if status == 200}
        records = await all_records(db)
        ok_records = {d["_id"] for d in records if d["transaction_id"] in accepted}
        delivered = await wait_all_delivered(db, ok_records, timeout_s=deliver_timeout_s)
        await system.wait_queues_drained()  # nothing left that could send a late duplicate
    counts = tally(
        acknowledged=stream.labels(acknowledged=True),
        unacknowledged=stream.labels(acknowledged=False),
        deliveries=delivered_labels(sendgrid),
    )
    fault_report(
        **counts.columns(),
        answered_503=stream.unavailable,
        answered_other=len(stream.other),
        records_delivered=len(delivered),
        provider_calls=sum(provider_calls(sendgrid).values()),
        **extra,
    )
    assert stream.other == []
    assert stream.ok + stream.unavailable == len(stream.results)
    assert stream.ok_at_the_end > 0, "the API did not recover"
    assert len(ok_records) == stream.ok
    assert counts.lost_keys == [], f"acknowledged but never delivered: {counts.lost_keys}"
    assert counts.duplicated_keys == [], f"delivered more than once: {counts.duplicated_keys}"
    assert counts.unexpected_keys == [], f"delivered, never requested: {counts.unexpected_keys}"
    return counts
