"""What every command's run shares: settings and resources, the operator's name, exit codes."""

from __future__ import annotations

import asyncio
import getpass
import logging
import socket
from collections.abc import Awaitable, Callable

import typer
from pymongo.errors import PyMongoError

from notifyctl.output import err
from shared.db.client import connect_database
from shared.dlq.ops import DeadLetters
from shared.errors import Busy, Unavailable, ValidationFailed
from shared.logging import configure_logging
from shared.messaging.topology import Topology
from shared.settings import Settings

EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_BUSY = 0, 1, 2, 3, 4


def actor() -> str:
    """Who acts, for the audit trail: `cli:<user>@<host>`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def run(work: Callable[[DeadLetters], Awaitable[int]]) -> None:
    """Build the resources from the settings, run `work`, map failures to exit codes."""
    try:
        settings = Settings()
    except ValueError as exc:
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    level = settings.log_level if settings.log_level.upper() == "DEBUG" else "WARNING"
    configure_logging(settings.model_copy(update={"log_level": level}), process="notifyctl")
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # its failures are reported below

    async def main() -> int:
        db = connect_database(
            url=settings.mongodb_url,
            name=settings.database_name,
            timeout_ms=settings.mongo_timeout_ms,
        )
        try:
            ops = DeadLetters(
                db=db,
                amqp_url=settings.rabbitmq_url,
                topology=Topology(settings.prefix, quorum=settings.quorum_queues),
                timeout_s=settings.publish_timeout_s,
                lock_wait_s=settings.publish_timeout_s,
            )
            return await work(ops)
        finally:
            await db.close()

    try:
        code = asyncio.run(main())
    except Busy as exc:
        err.print(f"[yellow]busy:[/yellow] {exc.message}")
        code = EXIT_BUSY
    except Unavailable as exc:
        err.print(f"[red]unavailable:[/red] {exc.message}")
        code = EXIT_UNAVAILABLE
    except PyMongoError as exc:
        err.print(f"[red]unavailable:[/red] MongoDB: {type(exc).__name__}: {str(exc)[:200]}")
        code = EXIT_UNAVAILABLE
    except ValidationFailed as exc:
        err.print(f"[red]error:[/red] {'; '.join(exc.details)}")
        code = EXIT_USAGE
    raise typer.Exit(code)
