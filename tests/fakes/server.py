"""Base for fake provider servers: a Starlette app served by uvicorn on 127.0.0.1 in the test loop.

A fake records every request it receives, can be scripted to give the next N answers of a route
verbatim, and can hold answers until released (to kill a worker mid-send, for instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

__all__ = ["FakeServer", "RecordedRequest", "ScriptedAnswer", "json_response"]


def json_response(status: int, body: Any, *, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response the way the providers send them."""
    return Response(
        content=json.dumps(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float = field(default_factory=time.monotonic)  # when the request arrived

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as an urlencoded form."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    """An answer given verbatim instead of the fake's normal behaviour."""

    status: int
    body: Any = None  # dict / list -> JSON; str / bytes -> as is; None -> empty
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self) -> Response:
        """The Starlette response for this answer."""
        if self.body is None or isinstance(self.body, str | bytes):
            return Response(content=self.body, status_code=self.status, headers=dict(self.headers))
        return json_response(self.status, self.body, headers=self.headers)


class _InLoopServer(uvicorn.Server):
    """A uvicorn server that signals readiness and leaves signal handling to pytest."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The test process owns SIGINT/SIGTERM; uvicorn swapping them per fake would fight pytest.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class FakeServer:
    """A local HTTP server speaking one provider's wire format; use as `async with`."""

    script_route = ""  # the route `script` scripts (for fakes with one main route)

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[ScriptedAnswer]] = {}
        self._gate = asyncio.Event()
        self._gate.set()
        self._arrived = asyncio.Condition()
        self._server: _InLoopServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self.accepted = 0  # messages the fake accepted (the bench reads it at GET /stats)
        self.lean = False  # keep no copy of requests or messages (the bench's long runs)

    def routes(self) -> list[BaseRoute]:
        """The provider's routes; subclasses define them."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self, port: int = 0) -> None:
        """Bind `port` (a free one by default) and serve until `stop()`."""
        if self._task is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Binding ourselves to port 0 gives a free port with no race between choosing and binding.
        sock.bind(("127.0.0.1", port))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            Starlette(routes=self.routes()),
            host="127.0.0.1",
            port=port,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            # A request still held at stop() must not keep the test session alive forever.
            timeout_graceful_shutdown=2,
        )
        server = _InLoopServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{type(self).__name__}")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            sock.close()
            await task  # re-raises why uvicorn could not start
            raise RuntimeError(f"{type(self).__name__} stopped during start-up")
        self._server, self._task, self._port = server, task, port

    async def stop(self) -> None:
        """Release held answers, let uvicorn close its connections, and wait for it to finish."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self.release()
        server.should_exit = True
        await task
        self._server = self._task = None
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def script(
        self,
        status: int,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests of `script_route` with exactly this."""
        self._script(self.script_route, status, body=body, headers=headers, times=times)

    def reset(self) -> None:
        """Forget recorded requests and scripted answers, and release held answers."""
        self.requests.clear()
        self._scripts.clear()
        self.release()

    def clear_scripts(self) -> None:
        """Drop scripted answers not given yet: the fake behaves normally again."""
        self._scripts.clear()

    def hold(self) -> None:
        """Keep every answer of a holding route back until `release()` (requests still record)."""
        self._gate.clear()

    def release(self) -> None:
        """Let held and future answers go."""
        self._gate.set()

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        """Recorded requests whose path ends with `path_suffix`."""
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    async def wait_for_requests(
        self, count: int, *, path_suffix: str = "", timeout_s: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until at least `count` requests (to paths ending with the suffix) have arrived."""

        def enough() -> bool:
            return len(self.requests_to(path_suffix)) >= count

        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(enough)
        return self.requests_to(path_suffix)

    def _script(
        self,
        route: str,
        status: int,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Queue `times` identical answers for `route`, served before any other handling."""
        if times < 1:
            raise ValueError("times must be at least 1")
        answer = ScriptedAnswer(status, body, dict(headers or {}))
        self._scripts.setdefault(route, deque()).extend([answer] * times)

    def _next_scripted(self, route: str) -> ScriptedAnswer | None:
        queue = self._scripts.get(route)
        return queue.popleft() if queue else None

    async def _record(self, request: Request) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        if self.lean:
            return recorded
        self.requests.append(recorded)
        async with self._arrived:
            self._arrived.notify_all()
        return recorded

    async def _answer(
        self,
        request: Request,
        *,
        route: str,
        handle: Callable[[RecordedRequest], Response],
        hold: bool = True,
    ) -> Response:
        """Record, wait while held, then give the scripted answer or `handle`'s."""
        recorded = await self._record(request)
        if hold:
            await self._gate.wait()
        scripted = self._next_scripted(route)
        if scripted is not None:
            return scripted.to_response()
        return handle(recorded)
