"""The HTTP load generator: N concurrent clients on keep-alive connections (aiohttp, orjson).

aiohttp's C parser keeps the generator cheap on a 2-core machine; its own CPU time is measured
(getrusage) and reported, so a saturated generator cannot pass for a slow API.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoadResult:
    """What one burst of requests did, seen from the client."""

    requests: int
    elapsed_s: float
    client_cpu_s: float
    latencies_ms: list[float] = field(default_factory=list)  # of accepted requests
    answers: list[dict[str, Any]] = field(default_factory=list)  # bodies of accepted requests
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 503", "ClientOSError", …

    @property
    def accepted(self) -> int:
        """Requests answered 200."""
        return len(self.latencies_ms)


class LoadGenerator:
    """One aiohttp session per run of the bench, sized for the largest concurrency used."""

    def __init__(self, *, base_url: str, api_key: str, max_connections: int) -> None:
        """Clients authenticate with `api_key`."""
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LoadGenerator:
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so a connection
        # left idle between phases is never reused just as the server closes it.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ttl_dns_cache=None, keepalive_timeout=2.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One POST (with `headers` added, e.g. a user RPC's X-User-ID); status and JSON body."""
        assert self._session is not None
        async with self._session.post(
            self._base_url + path,
            data=orjson.dumps(body),
            headers={**self._headers, **headers} if headers else self._headers,
        ) as response:
            raw = await response.read()
        return response.status, (orjson.loads(raw) if raw else None)

    async def get(self, url: str) -> tuple[int, Any]:
        """One GET of an absolute URL (the fake provider's stats); status and parsed JSON."""
        assert self._session is not None
        async with self._session.get(url) as response:
            raw = await response.read()
        return response.status, (orjson.loads(raw) if raw else None)

    async def burst(
        self,
        *,
        path: str,
        body_for: Callable[[int], dict[str, Any]],
        count: int,
        concurrency: int,
    ) -> LoadResult:
        """`count` POSTs from `concurrency` clients, each sending its next as soon as answered."""
        next_index = 0
        result = LoadResult(requests=count, elapsed_s=0.0, client_cpu_s=0.0)

        async def client() -> None:
            nonlocal next_index
            while next_index < count:
                index = next_index
                next_index += 1
                body = body_for(index)
                started = time.perf_counter()
                try:
                    status, answer = await self.call(path, body)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.errors[type(exc).__name__] += 1
                    continue
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    result.answers.append(answer)
                else:
                    result.errors[f"HTTP {status}"] += 1

        cpu = cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(min(concurrency, count))))
        result.elapsed_s = time.perf_counter() - started
        result.client_cpu_s = cpu_seconds() - cpu
        return result
