"""Run one fake provider on its own (local trial, bench): `python -m tests.fakes.serve NAME`.

NAME is one of sendgrid, ses, fcm, apns, twilio, slack, discord, novu, or `webhook`: an endpoint
for outbound webhooks that prints each signed request it receives. The fake listens on 127.0.0.1
(`--port`, a free one by default) and prints one JSON line: the `manage/configure-provider` body
that points a tenant at it, and an example address for a subscriber. `--stats-port` also serves
`GET /stats` (`{"accepted": N}`) over HTTP/1.1; `--lean` keeps no copy of what it accepts (long
runs); `--config-out FILE` writes the JSON there too. Stops on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.apns import FakeApns
from tests.fakes.discord import FakeDiscord
from tests.fakes.fcm import FakeFcm
from tests.fakes.novu import FakeNovu
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.fakes.server import FakeServer, _InLoopServer
from tests.fakes.ses import FakeSes
from tests.fakes.slack import DEFAULT_BOT_TOKEN, FakeSlack
from tests.fakes.twilio import FakeTwilio
from tests.fakes.webhook_sink import WebhookSink

NAMES = ("sendgrid", "ses", "fcm", "apns", "twilio", "slack", "discord", "novu", "webhook")
Fake = FakeServer | FakeApns


def make(name: str) -> Fake:
    """A fake of that name, not started."""
    fakes: dict[str, type[Fake]] = {
        "sendgrid": FakeSendGrid,
        "ses": FakeSes,
        "fcm": FakeFcm,
        "apns": FakeApns,
        "twilio": FakeTwilio,
        "slack": FakeSlack,
        "discord": FakeDiscord,
        "novu": FakeNovu,
        "webhook": WebhookSink,
    }
    return fakes[name]()


def configuration(name: str, fake: Fake, url: str) -> dict[str, Any]:
    """The configure-provider body for the fake at `url`, and an example subscriber address."""
    credentials: dict[str, Any]
    if isinstance(fake, FakeApns):
        credentials = fake.credentials()
        address: dict[str, Any] = {"apnsToken": "ab" * 32}
    elif isinstance(fake, FakeSes):
        credentials = fake.credentials(fromName="Notify trial")
        address = {"email": "ada@example.com"}
    elif isinstance(fake, FakeFcm):
        credentials = {"serviceAccountJson": fake.service_account_json()}
        address = {"fcmToken": "fcm-device-token-1"}
    elif isinstance(fake, FakeTwilio):
        credentials = fake.credentials()
        address = {"phone": "+14155550100"}
    elif isinstance(fake, FakeSlack):
        credentials = {"botToken": DEFAULT_BOT_TOKEN}
        address = {"chat": {"slackWebhookUrl": f"{url}/services/T0FAKE/B0FAKE/trial"}}
    elif isinstance(fake, WebhookSink):
        fake.echo = True
        return {"provider": name, "webhookUrl": f"{url}/hook"}
    elif isinstance(fake, FakeNovu):
        credentials = fake.credentials()
        address = {"email": "ada@example.com"}  # push needs a device: register-push-device
    elif isinstance(fake, FakeDiscord):
        credentials = {}
        address = {"chat": {"discordWebhookUrl": f"{url}/api/webhooks/112233445566778899/trial"}}
    else:
        credentials = {"apiKey": DEFAULT_API_KEY, "fromEmail": "noreply@acme.test"}
        address = {"email": "ada@example.com"}
    return {
        "provider": name,
        "configure": {"providerType": name.upper(), "credentials": credentials, "endpoint": url},
        "address": address,
    }


_tasks: set[asyncio.Task[None]] = set()


async def _serve_starlette(routes: list[BaseRoute], port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        Starlette(routes=routes),
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Longer than a worker keeps a connection idle, so the fake never closes one under it.
        timeout_keep_alive=120,
    )
    server = _InLoopServer(config)  # leaves SIGINT / SIGTERM to `serve`
    _tasks.add(asyncio.get_running_loop().create_task(server.serve()))
    await server.ready.wait()
    return server


async def serve(
    name: str, *, port: int, stats_port: int | None, lean: bool, out: Path | None
) -> None:
    """Start the fake (and its stats), print the configuration, wait for a stop signal."""
    fake = make(name)
    fake.lean = lean
    servers: list[uvicorn.Server] = []
    if isinstance(fake, FakeApns):
        await fake.start(port)
        url = fake.url
    else:
        # Not FakeServer.start (h11, for tests): httptools answers a long run far cheaper.
        servers.append(await _serve_starlette(fake.routes(), port))
        bound = int(servers[0].servers[0].sockets[0].getsockname()[1])
        fake._port = bound  # what `fake.url` reads (FCM's token_uri is built from it)
        url = fake.url
    if stats_port is not None:

        async def stats(request: Request) -> Response:
            return JSONResponse({"accepted": fake.accepted})

        servers.append(await _serve_starlette([Route("/stats", stats)], stats_port))
    line = json.dumps(configuration(name, fake, url))
    if out is not None:
        await asyncio.to_thread(out.write_text, line + "\n")
    print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.should_exit = True
    if isinstance(fake, FakeApns):
        await fake.stop()
    await asyncio.gather(*_tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.serve", description=__doc__)
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats-port", type=int, default=None)
    parser.add_argument("--lean", action="store_true")
    parser.add_argument("--config-out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        asyncio.run(
            serve(
                args.name,
                port=args.port,
                stats_port=args.stats_port,
                lean=args.lean,
                out=args.config_out,
            )
        )
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
