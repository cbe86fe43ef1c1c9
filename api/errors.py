"""The only place that maps errors to HTTP status codes; every error body is the envelope."""

from __future__ import annotations

from typing import Any

import structlog
from bson.errors import InvalidDocument
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pymongo.errors import ConnectionFailure, PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import JsonResponse
from api.validation import describe_errors
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    NotifyError,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)

log = structlog.get_logger(__name__)

_STATUS: list[tuple[type[NotifyError], int, str]] = [
    (ValidationFailed, 400, "Validation failed"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (RateLimited, 429, "Too many requests"),
    (Unavailable, 503, "Service unavailable"),
]


def envelope_error(
    status: int, message: str, error: Any, *, retry_after_s: int | None = None
) -> JsonResponse:
    """The seed-003 error envelope (503 and 429 say when to try again)."""
    body = {"success": False, "message": message, "error": error}
    if retry_after_s is None and status == 503:
        retry_after_s = 5
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JsonResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the envelope."""

    @app.exception_handler(NotifyError)
    async def _notify_error(_: Request, exc: NotifyError) -> JsonResponse:
        for cls, status, title in _STATUS:
            if isinstance(exc, cls):
                if isinstance(exc, Unavailable):
                    log.warning("request_unavailable", reason=exc.message)
                if isinstance(exc, ValidationFailed):
                    return envelope_error(status, title, exc.details)
                if isinstance(exc, Unauthorized):
                    return envelope_error(status, title, exc.message)
                if isinstance(exc, RateLimited):
                    return envelope_error(
                        status, title, [exc.message], retry_after_s=exc.retry_after_s
                    )
                return envelope_error(status, title, [exc.message, *exc.details])
        log.error("unmapped_error", error=repr(exc))
        return envelope_error(500, "Internal server error", exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JsonResponse:
        return envelope_error(400, "Validation failed", describe_errors(exc.errors()))

    @app.exception_handler(ConnectionFailure)
    async def _mongo_down(_: Request, exc: ConnectionFailure) -> JsonResponse:
        log.warning("request_unavailable", reason="database", error=str(exc)[:200])
        return envelope_error(
            503, "Service unavailable", ["database unavailable: " + type(exc).__name__]
        )

    @app.exception_handler(PyMongoError)
    async def _mongo_error(_: Request, exc: PyMongoError) -> JsonResponse:
        log.error("database_error", error=str(exc)[:500])
        return envelope_error(503, "Service unavailable", ["database error: " + type(exc).__name__])

    @app.exception_handler(InvalidDocument)
    async def _unstorable(_: Request, exc: InvalidDocument) -> JsonResponse:
        # Valid JSON that BSON cannot hold (a NUL byte in a key): refused, nothing written.
        return envelope_error(
            400, "Validation failed", [f"body cannot be stored: {str(exc)[:200]}"]
        )

    @app.exception_handler(OverflowError)
    async def _too_big_for_bson(_: Request, exc: OverflowError) -> JsonResponse:
        # BSON holds integers of at most 8 bytes; a larger number in free-form data (content
        # data, variables) is the client's, so a 400, nothing written. Any other overflow is
        # ours.
        if _raised_encoding_bson(exc):
            return envelope_error(
                400, "Validation failed", ["body cannot be stored: a number is over 8 bytes"]
            )
        log.error("unhandled_overflow", error=repr(exc))
        return envelope_error(500, "Internal server error", "internal error")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        return envelope_error(exc.status_code, str(exc.detail), str(exc.detail))


def _raised_encoding_bson(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "/bson/" in filename or "/pymongo/" in filename:
            return True
        tb = tb.tb_next
    return False
