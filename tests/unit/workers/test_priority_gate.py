"""The gate that lets a channel worker take its high queue first (quorum queues)."""

from __future__ import annotations

import asyncio

from workers.priority import PriorityGate


async def _hold(gate: PriorityGate, *, high: bool, name: str, order: list[str]) -> None:
    async with gate.slot(high=high):
        order.append(name)
        await asyncio.sleep(0)


async def _busy(gate: PriorityGate, release: asyncio.Event, order: list[str], name: str) -> None:
    """Hold a normal slot until `release` is set."""
    async with gate.slot(high=False):
        order.append(name)
        await release.wait()


async def test_a_freed_slot_goes_to_a_waiting_high_request_first() -> None:
    gate = PriorityGate(2)
    order: list[str] = []
    release = asyncio.Event()
    holders = [asyncio.create_task(_busy(gate, release, order, f"busy{i}")) for i in range(2)]
    await asyncio.sleep(0)
    assert gate.free == 0
    # Normal requests queue first, then high ones: the high ones still go first.
    waiting = [
        asyncio.create_task(_hold(gate, high=False, name=f"n{i}", order=order)) for i in range(3)
    ]
    await asyncio.sleep(0)
    waiting += [
        asyncio.create_task(_hold(gate, high=True, name=f"h{i}", order=order)) for i in range(3)
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*holders, *waiting)
    assert order[:2] == ["busy0", "busy1"]
    assert order[2:5] == ["h0", "h1", "h2"]
    assert order[5:] == ["n0", "n1", "n2"]
    assert gate.free == 2


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()
    holder = asyncio.create_task(_busy(gate, release, order, "busy"))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(_hold(gate, high=True, name="gone", order=order))
    after = asyncio.create_task(_hold(gate, high=False, name="after", order=order))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(holder, after)
    assert cancelled.cancelled()
    assert order == ["busy", "after"]
    assert gate.free == 1


async def test_a_slot_handed_over_as_its_waiter_is_cancelled_is_passed_on() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()
    waiters: list[asyncio.Task[None]] = []

    async def busy() -> None:
        async with gate.slot(high=False):
            await release.wait()
        # Same step as the release: the slot is handed to `first`, which has not run yet.
        waiters[0].cancel()

    holder = asyncio.create_task(busy())
    await asyncio.sleep(0)
    waiters += [
        asyncio.create_task(_hold(gate, high=True, name=name, order=order))
        for name in ("first", "second")
    ]
    await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(5):  # a slot lost with the cancelled waiter hangs `second`
        await asyncio.gather(holder, *waiters, return_exceptions=True)
    assert waiters[0].cancelled()
    assert order == ["second"]
    assert gate.free == 1


async def test_waiting_high_requests_are_counted_and_announced() -> None:
    changes: list[int] = []
    gate = PriorityGate(1, on_change=lambda: changes.append(gate.high_waiting))
    release = asyncio.Event()
    order: list[str] = []
    holder = asyncio.create_task(_busy(gate, release, order, "busy"))
    await asyncio.sleep(0)
    normal = asyncio.create_task(_hold(gate, high=False, name="n", order=order))
    await asyncio.sleep(0)
    assert changes == []  # normal requests waiting are not announced
    high = asyncio.create_task(_hold(gate, high=True, name="h", order=order))
    await asyncio.sleep(0)
    assert gate.high_waiting == 1
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(holder, normal, high)
    assert changes == [1, 0]
    assert order == ["busy", "h", "n"]
