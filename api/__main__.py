"""`python -m api`: serve the API with uvicorn."""

from __future__ import annotations

import os
import tempfile

import uvicorn

from api.app import create_app
from shared.logging import configure_logging
from shared.metrics import MULTIPROC_ENV
from shared.settings import Settings


def main() -> None:
    """Entry point: settings are read here and nowhere below."""
    settings = Settings()
    configure_logging(settings, process="api")
    if settings.api_processes > 1:
        # Each process counts into files of a shared directory, so any process's /metrics
        # answers for all of them (prometheus-client's multiprocess mode).
        os.environ.setdefault(MULTIPROC_ENV, tempfile.mkdtemp(prefix="notify-metrics-"))
        # uvicorn's own process manager: each worker builds the app from the environment.
        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            workers=settings.api_processes,
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="auto",
        http="auto",
    )


if __name__ == "__main__":
    main()
