"""`python -m tests.faults.failpoint_fanout N`: the fan-out worker, dying like `kill -9` right
after batch N of a fan-out was stored and published, before its cursor moved past it.

Test-only: the hook is installed here, by the harness, so no production module holds a way to
kill its own process. Used to prove a fan-out resumes with no recipient skipped or sent twice.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys

import structlog

from shared.logging import configure_logging
from shared.settings import Settings
from workers.fanout import fanout_services
from workers.fanout.expand import FanoutHooks
from workers.process import WorkerProcess
from workers.roles import ROLES

log = structlog.get_logger(__name__)


def _die_after(batch: int, done: int) -> None:
    if done >= batch:
        log.warning("failpoint_crash", failpoint="after_batch", batch=done)
        os.kill(os.getpid(), signal.SIGKILL)


async def _run(settings: Settings) -> None:
    worker = WorkerProcess(settings, "fanout")
    await worker.start()
    await asyncio.Event().wait()  # until the failpoint kills the process


def main() -> None:
    """Run the fan-out role with the crash hook after the batch named on the command line."""
    batch = int(sys.argv[1])
    settings = Settings()
    configure_logging(settings, process="worker-fanout")
    hooks = FanoutHooks(after_batch=functools.partial(_die_after, batch))
    ROLES["fanout"] = functools.partial(fanout_services, hooks=hooks)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
