"""Coalesce concurrent single-document calls into one batched database call.

Callers still make one call for one document and get their own answer (or their own
exception); underneath, everything that arrives while a batch is in flight goes out together
as the next batch. A lone call goes out at once, so nothing waits for a batch to fill: the
batch size follows the load. On an embedded server that pays per command (SecantusDB: ~250
`update_one`/s but ~1,000 documents/s by `update_many`, ~500 `insert_one`/s but ~2,300
documents/s by `insert_many`) this is most of the write cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 500

# One outcome per item: a value, or the exception that item's caller should see.
BatchFn = Callable[[K, list[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[K, T, R]):
    """Runs `batch(key, items)` for the items submitted under one key while it was busy."""

    def __init__(
        self, batch: BatchFn[K, T, R], *, max_batch: int = MAX_BATCH, linger_s: float = 0.0
    ) -> None:
        """`batch` returns one outcome per item, in order; `linger_s` holds a lone call back
        that long for company (a bulk whose siblings are a few milliseconds behind)."""
        self._batch = batch
        self._max = max_batch
        self._linger_s = linger_s
        self._pending: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._tasks: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: T) -> R:
        """Send `item` with the next batch of `key`; its outcome."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((item, future))
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain(key))
        return await future

    async def _drain(self, key: K) -> None:
        try:
            if self._linger_s > 0:
                await asyncio.sleep(self._linger_s)
            while self._pending.get(key):
                queued = self._pending.pop(key)
                batch, rest = queued[: self._max], queued[self._max :]
                if rest:
                    self._pending[key] = rest
                await self._run(key, batch)
        finally:
            del self._tasks[key]

    async def _run(self, key: K, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._batch(key, [item for item, _ in batch])
        except BaseException as exc:  # every caller of this batch sees the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away (cancelled request)
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
