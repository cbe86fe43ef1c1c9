"""`python -m workers <channel|maintenance>`: run one worker until SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from enum import StrEnum

import typer

from shared.domain import Channel
from shared.logging import configure_logging
from shared.settings import Settings
from workers.maintenance import MaintenanceWorker
from workers.runner import ChannelWorker

cli = typer.Typer(add_completion=False)


class Role(StrEnum):
    """What a worker process does: deliver one channel, or run the maintenance sweeps."""

    EMAIL = Channel.EMAIL.value
    PUSH = Channel.PUSH.value
    SMS = Channel.SMS.value
    CHAT = Channel.CHAT.value
    IN_APP = Channel.IN_APP.value
    MAINTENANCE = "maintenance"


async def _run_channel(settings: Settings, channel: Channel) -> None:
    worker = ChannelWorker(settings, channel)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await stop.wait()
    await worker.stop()


async def _run_maintenance(settings: Settings) -> None:
    worker = MaintenanceWorker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()


@cli.command()
def main(
    role: Role = typer.Argument(..., help="email, push, sms, chat, in_app or maintenance"),
) -> None:
    """Consume a channel's queue and deliver, or run the maintenance sweeps."""
    settings = Settings()
    name = role.value
    configure_logging(settings, process=f"worker-{name}")
    main_coro = (
        _run_maintenance(settings)
        if name == "maintenance"
        else _run_channel(settings, Channel(name))
    )
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # uvloop is optional (not on Windows)
            asyncio.run(main_coro)
        else:
            uvloop.run(main_coro)


if __name__ == "__main__":
    cli()
