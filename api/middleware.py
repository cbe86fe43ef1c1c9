"""ASGI middleware of the API: request metrics and rate-limit headers, and the body-size limit.

Plain ASGI (no BaseHTTPMiddleware): each costs one function call per message on the hot path.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import envelope_error
from api.ratelimit import RateDecision
from shared import metrics

_DRAIN_FACTOR = 8


class ObserveMiddleware:
    """Counts and times each request by route template; adds the key's `RateLimit` headers.

    The route is known once the router has matched it (`scope["route"]`); the rate-limit
    decision once `api/access.py` has taken it (`scope["state"]["rate_limit"]`), so both are
    read when the response starts, errors included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            route = scope.get("route")
            metrics.observe_http(
                route=str(getattr(route, "path", "unmatched")),
                method=scope["method"],
                status=status,
                seconds=time.perf_counter() - started,
            )

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                decision: RateDecision | None = scope.get("state", {}).get("rate_limit")
                if decision is not None:
                    message.setdefault("headers", []).extend(decision.headers())
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                observe()  # before the last byte leaves: a client never outruns its count
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not observed:
                observe()


class BodyLimitMiddleware:
    """Refuses a request body over `max_bytes` with 413; the app never sees it.

    The body is read as it arrives and dropped once over the limit, until its end (up to
    `_DRAIN_FACTOR` times the limit), so the client, still sending, can read the answer; a
    larger body has its connection closed after the answer. A body within the limit is
    handed on as it was received.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        over = (_content_length(scope) or 0) > self.max_bytes
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)
                break
            size += len(message.get("body", b""))
            over = over or size > self.max_bytes
            if not over:
                messages.append(message)
            if not message.get("more_body", False) or size > self.max_bytes * _DRAIN_FACTOR:
                break
        if over:
            limit = _size(self.max_bytes)
            response = envelope_error(413, "Payload too large", [f"body must be at most {limit}"])
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
