"""`python -m workers <channel>`: run one channel's worker until SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from shared.domain import Channel
from shared.logging import configure_logging
from shared.settings import Settings
from workers.runner import ChannelWorker

cli = typer.Typer(add_completion=False)


async def _run(settings: Settings, channel: Channel) -> None:
    worker = ChannelWorker(settings, channel)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await stop.wait()
    await worker.stop()


@cli.command()
def main(channel: Channel = typer.Argument(..., help="email, push, sms, chat or in_app")) -> None:
    """Consume CHANNEL's queue and deliver."""
    settings = Settings()
    configure_logging(settings, process=f"worker-{channel.value}")
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # uvloop is optional (not on Windows)
            asyncio.run(_run(settings, channel))
        else:
            uvloop.run(_run(settings, channel))


if __name__ == "__main__":
    cli()
