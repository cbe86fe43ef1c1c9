"""The Coalescer: concurrent calls share a batch, yet each caller gets only its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from shared.db.batching import Coalescer


class _Recorder:
    """A batch function that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: str, items: list[int]) -> list[int | BaseException]:
        self.batches.append((key, list(items)))
        await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_call_goes_at_once() -> None:
    batch = _Recorder()
    coalescer: Coalescer[str, int, int] = Coalescer(batch)
    assert await coalescer.submit("t", 1) == 10
    assert batch.batches == [("t", [1])]


async def test_calls_arriving_while_a_batch_is_in_flight_go_together() -> None:
    batch = _Recorder()
    batch.gate.clear()
    coalescer: Coalescer[str, int, int] = Coalescer(batch)
    first = asyncio.create_task(coalescer.submit("t", 1))
    await asyncio.sleep(0)  # the first batch is now in flight, held
    rest = [asyncio.create_task(coalescer.submit("t", i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    batch.gate.set()
    assert await first == 10
    assert [await r for r in rest] == [20, 30, 40]
    assert batch.batches == [("t", [1]), ("t", [2, 3, 4])]


async def test_each_caller_sees_only_its_own_failure() -> None:
    batch = _Recorder()
    batch.gate.clear()
    coalescer: Coalescer[str, int, int] = Coalescer(batch)
    blocker = asyncio.create_task(coalescer.submit("t", 0))
    await asyncio.sleep(0)
    good = asyncio.create_task(coalescer.submit("t", 5))
    bad = asyncio.create_task(coalescer.submit("t", -1))
    await asyncio.sleep(0)
    batch.gate.set()
    await blocker
    assert await good == 50
    with pytest.raises(ValueError, match="bad -1"):
        await bad


async def test_keys_are_batched_apart_and_a_failed_batch_fails_only_its_callers() -> None:
    calls: list[str] = []

    async def flaky(key: str, items: list[int]) -> list[int | BaseException]:
        calls.append(key)
        if key == "down":
            raise ConnectionError("server gone")
        return list(items)

    coalescer: Coalescer[str, int, int] = Coalescer(flaky)
    ok, down = await asyncio.gather(
        coalescer.submit("up", 7), coalescer.submit("down", 8), return_exceptions=True
    )
    assert ok == 7
    assert isinstance(down, ConnectionError)
    assert sorted(calls) == ["down", "up"]
    with pytest.raises(ConnectionError):  # the failed key runs a fresh batch next time
        await coalescer.submit("down", 9)
    assert calls.count("down") == 2


async def test_batches_are_capped() -> None:
    batch = _Recorder()
    batch.gate.clear()
    coalescer: Coalescer[str, int, int] = Coalescer(batch, max_batch=2)
    tasks = [asyncio.create_task(coalescer.submit("t", i)) for i in range(5)]
    await asyncio.sleep(0)
    batch.gate.set()
    assert [await t for t in tasks] == [0, 10, 20, 30, 40]
    assert [items for _, items in batch.batches] == [[0, 1], [2, 3], [4]]
