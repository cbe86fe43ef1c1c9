"""structlog, configured once per process: console on a TTY, JSON lines otherwise."""

from __future__ import annotations

import logging
import sys

import structlog

from shared.settings import Settings


def configure_logging(settings: Settings, *, process: str) -> None:
    """Set up structlog and route stdlib logging through it; bind the process name."""
    json_output = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared_processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(settings.log_level.upper())
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    structlog.contextvars.bind_contextvars(process=process)
