"""`python -m tests.faults.failpoint_digest after_close|after_send`: the digest worker, dying
like `kill -9` right after it closed a digest (or stored its notification).

Test-only: the hook is installed here, by the harness, so no production module holds a way to
kill its own process. Used to prove a digest is sent exactly once across such a crash.
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
from workers.digest import digest_services
from workers.digest.closer import DigestHooks
from workers.process import WorkerProcess
from workers.roles import ROLES

log = structlog.get_logger(__name__)


def _die(failpoint: str) -> None:
    log.warning("failpoint_crash", failpoint=failpoint)
    os.kill(os.getpid(), signal.SIGKILL)


async def _run(settings: Settings) -> None:
    worker = WorkerProcess(settings, "digest")
    await worker.start()
    await asyncio.Event().wait()  # until the failpoint kills the process


def main() -> None:
    """Run the digest role with the crash hook at the failpoint named on the command line."""
    failpoint = sys.argv[1]
    if failpoint not in ("after_close", "after_send"):
        raise SystemExit(f"unknown failpoint {failpoint!r}")
    settings = Settings()
    configure_logging(settings, process="worker-digest")
    hooks = DigestHooks(**{failpoint: functools.partial(_die, failpoint)})
    ROLES["digest"] = functools.partial(digest_services, hooks=hooks)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
