"""A fake SendGrid that answers at once, in its own process: `python fake_provider.py PORT KEY`.

It is the tests' `FakeSendGrid` (same routes, same validation, same 202 + `X-Message-Id`), served
by uvicorn with httptools instead of h11 and keeping no copy of what it accepted, so a long run
neither grows its memory nor makes the provider look slower than a real one. `GET /stats` says
how many mails it accepted.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.server import RecordedRequest


class CountingSendGrid(FakeSendGrid):
    """FakeSendGrid that counts accepted mails instead of keeping them."""

    def __init__(self, api_key: str) -> None:
        """Accept `api_key` only."""
        super().__init__(api_keys=[api_key])
        self.accepted = 0

    async def _record(self, request: Request) -> RecordedRequest:
        return RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )

    def _accept(self, recorded: RecordedRequest) -> Response:
        response = super()._accept(recorded)
        if response.status_code == 202:
            self.accepted += 1
        self.mails.clear()
        self.message_ids.clear()
        return response


def app(api_key: str) -> Starlette:
    """The fake's routes plus `/stats`."""
    fake = CountingSendGrid(api_key)

    async def stats(request: Request) -> Response:
        body: dict[str, Any] = {"accepted": fake.accepted}
        return JSONResponse(body)

    return Starlette(routes=[*fake.routes(), Route("/stats", stats)])


def main() -> None:
    """Serve on 127.0.0.1:PORT until SIGTERM."""
    port, api_key = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        app(api_key),
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Longer than the worker's pool keeps a connection idle, so the fake never closes one
        # just as the worker reuses it (a ReadError that says nothing about the system).
        timeout_keep_alive=120,
    )


if __name__ == "__main__":
    main()
