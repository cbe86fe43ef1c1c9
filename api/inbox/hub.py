"""One API process's end of `notifications.realtime`: wake-ups for the sockets it holds.

The process declares an exclusive, auto-deleted queue of its own and binds it with
`<tenant>.<subscriber>` while it holds at least one socket of that subscriber (DESIGN.md §3),
so a change made anywhere (a worker's delivery, another process's mark) wakes exactly the
processes that need it. Wake-ups carry nothing: each socket reads its subscriber's stream.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from shared.messaging.broker import Broker

log = structlog.get_logger(__name__)

IDLE_UNBIND_S = 30.0  # a binding nobody has wanted this long is removed


class Listener(Protocol):
    """A socket as the hub sees it."""

    def wake(self) -> None:
        """Its stream may have new events."""

    def shutdown(self) -> None:
        """The process is stopping: close cleanly."""


class RealtimeHub:
    """Binds routing keys while sockets want them and wakes those sockets."""

    def __init__(self, *, broker: Broker) -> None:
        self._broker = broker
        self.instance = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock, its users
        self._bound: set[str] = set()
        self._idle: dict[str, float] = {}  # bound keys nobody listens to, since when
        self._sweeper: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        """Declare this process's queue and consume it."""
        topology = self._broker.topology
        channel = await self._broker.connection.channel()
        self._channel = channel
        self._exchange = await channel.declare_exchange(
            topology.realtime_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._queue = await channel.declare_queue(
            topology.realtime_queue(self.instance), exclusive=True, auto_delete=True
        )
        await self._queue.consume(self._on_message, no_ack=True)
        self._sweeper = asyncio.create_task(self._sweep())
        # Wake-ups published while the connection was down are gone: every socket reads.
        self._broker.connection.reconnect_callbacks.add(self._on_reconnect)

    async def join(self, key: str, listener: Listener) -> None:
        """Wake `listener` for `key` from now on (the binding exists when this returns)."""
        async with self._locked(key):
            self._idle.pop(key, None)
            self._listeners[key].add(listener)
            if key not in self._bound:
                try:
                    await self._bind(key)
                except BaseException:
                    self._forget(key, listener)
                    raise
                self._bound.add(key)

    async def leave(self, key: str, listener: Listener) -> None:
        """Stop waking `listener`. The last one out leaves the binding for a while: a client
        reconnecting soon finds it there, and a thousand sockets closing at once cost no
        thousand unbinds on their way out (the sweep removes idle bindings in the background)."""
        if self._forget(key, listener):
            self._idle[key] = time.monotonic()

    async def _sweep(self) -> None:
        """Remove bindings nobody has wanted for IDLE_UNBIND_S, one at a time."""
        while True:
            await asyncio.sleep(IDLE_UNBIND_S / 2)
            cutoff = time.monotonic() - IDLE_UNBIND_S
            for key in [k for k, since in self._idle.items() if since < cutoff]:
                async with self._locked(key):
                    if key in self._listeners or self._idle.pop(key, None) is None:
                        continue
                    self._bound.discard(key)
                    if self._queue is None or self._exchange is None:
                        continue
                    try:
                        await self._queue.unbind(self._exchange, routing_key=key)
                    except Exception as exc:  # the queue goes with the connection anyway
                        log.info("realtime_unbind_failed", error=str(exc))

    @property
    def sockets(self) -> int:
        """Sockets held right now."""
        return sum(len(s) for s in self._listeners.values())

    async def close(self) -> None:
        """Tell every socket to close, then drop the channel (and so the queue)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.shutdown()
        if self._channel is not None and not self._channel.is_closed:
            try:
                await self._channel.close()
            except Exception as exc:
                log.info("realtime_channel_close_failed", error=str(exc))

    async def _bind(self, key: str) -> None:
        if self._queue is None or self._exchange is None:
            raise RuntimeError("realtime hub not started")
        await self._queue.bind(self._exchange, routing_key=key)

    def _forget(self, key: str, listener: Listener) -> bool:
        """Remove one listener; True when it was the key's last."""
        listeners = self._listeners.get(key)
        if listeners is None or listener not in listeners:
            return False
        listeners.discard(listener)
        if listeners:
            return False
        del self._listeners[key]
        return True

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        """One bind or unbind of a key at a time; the lock lives while someone uses it."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        for listener in list(self._listeners.get(message.routing_key or "", ())):
            listener.wake()

    def _on_reconnect(self, *_: Any) -> None:
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.wake()
