"""The hub's bookkeeping of bindings: bind once per key, keep an idle one a while, sweep it.

The AMQP side is a recording stand-in here (a unit test of the bookkeeping only); the
integration tests run the hub against the real broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.inbox import hub as hub_module
from api.inbox.hub import RealtimeHub


class RecordingQueue:
    """Records bind and unbind calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.unbound = asyncio.Event()

    async def bind(self, exchange: Any, *, routing_key: str) -> None:
        self.calls.append(("bind", routing_key))

    async def unbind(self, exchange: Any, *, routing_key: str) -> None:
        self.calls.append(("unbind", routing_key))
        self.unbound.set()


class Listener:
    """Counts wake-ups."""

    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1

    def shutdown(self) -> None:
        """Nothing to do here."""


def _hub() -> tuple[RealtimeHub, RecordingQueue]:
    hub = RealtimeHub(broker=None)  # type: ignore[arg-type]
    queue = RecordingQueue()
    hub._queue = queue  # type: ignore[assignment]
    hub._exchange = object()  # type: ignore[assignment]
    return hub, queue


async def test_one_binding_per_key_kept_while_idle_then_swept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "IDLE_UNBIND_S", 0.2)
    hub, queue = _hub()
    a, b = Listener(), Listener()
    await hub.join("t.u", a)
    await hub.join("t.u", b)
    assert queue.calls == [("bind", "t.u")]
    await hub.leave("t.u", a)
    await hub.leave("t.u", b)
    await hub.leave("t.u", b)  # twice is harmless
    assert hub.sockets == 0
    # A quick reconnect finds the binding still there.
    await hub.join("t.u", a)
    assert queue.calls == [("bind", "t.u")]
    await hub.leave("t.u", a)
    sweeper = asyncio.create_task(hub._sweep())
    try:
        async with asyncio.timeout(5):
            await queue.unbound.wait()
    finally:
        sweeper.cancel()
    # After the sweep, joining binds again.
    await hub.join("t.u", b)
    assert queue.calls == [("bind", "t.u"), ("unbind", "t.u"), ("bind", "t.u")]


async def test_a_key_in_use_is_never_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "IDLE_UNBIND_S", 0.1)
    hub, queue = _hub()
    listener = Listener()
    await hub.join("t.v", listener)
    sweeper = asyncio.create_task(hub._sweep())
    await asyncio.sleep(0.4)
    sweeper.cancel()
    assert queue.calls == [("bind", "t.v")]
    hub._on_reconnect()
    assert listener.woken == 1
