"""`python -m workers <role>`: run one worker until SIGTERM / Ctrl-C.

argparse, not typer: the worker entry point loads no CLI framework (typer is notifyctl's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from shared.logging import configure_logging
from shared.settings import Settings
from workers.process import WorkerProcess
from workers.roles import ROLES


async def _run(settings: Settings, role: str) -> None:
    worker = WorkerProcess(settings, role)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await stop.wait()
    await worker.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse the role, read settings (only here), run."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("role", choices=sorted(ROLES), help="what this process does")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings, process=f"worker-{args.role}")
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # uvloop is optional (not on Windows)
            asyncio.run(_run(settings, args.role))
        else:
            uvloop.run(_run(settings, args.role))


if __name__ == "__main__":
    main()
