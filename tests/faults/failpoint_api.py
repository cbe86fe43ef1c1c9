"""`python -m tests.faults.failpoint_api`: the API, dying like `kill -9` after each record write.

Test-only: the hook is installed here, by the harness, so no production module holds a way to
kill its own process. Used to prove the maintenance sweep publishes what such a crash left.
"""

from __future__ import annotations

import os
import signal

import structlog
import uvicorn

from api.app import create_app
from shared.logging import configure_logging
from shared.pipeline import PipelineHooks
from shared.settings import Settings

log = structlog.get_logger(__name__)


def _die() -> None:
    log.warning("failpoint_crash", failpoint="after_record_write")
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    """Serve the API with the crash hook installed between record write and publish."""
    settings = Settings()
    configure_logging(settings, process="api")
    app = create_app(settings, hooks=PipelineHooks(after_store=_die))
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning")


if __name__ == "__main__":
    main()
