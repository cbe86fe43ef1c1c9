"""Error responses as the OpenAPI document declares them: the envelope, per status code.

Every router declares what all of its routes can answer (`COMMON`: 400, 401, 403, 413, 429 and
503); a route adds what only it can answer: `responses=errors(404, 409)`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorEnvelope(BaseModel):
    """Seed 003's error envelope: `error` lists every violated rule (or names the problem)."""

    success: bool = False
    message: str
    error: list[str] | str


_EXAMPLES: dict[int, tuple[str, str, list[str] | str]] = {
    400: (
        "Bad input: every broken rule, naming its field",
        "Validation failed",
        ["userId is required", "priority must not be greater than 5"],
    ),
    401: ("No or unknown credentials", "Unauthorized", "Invalid or missing authentication token"),
    403: (
        "Credentials valid, but not for this (scope, tenant, environment)",
        "Forbidden",
        ["this operation needs an admin API key"],
    ),
    404: (
        "A named thing does not exist in this tenant",
        "Not found",
        ["transaction txn_… does not exist"],
    ),
    409: ("Collides with the current state", "Conflict", ["subscriber u1 already exists"]),
    413: ("The request body is too large", "Payload too large", ["body must be at most 1 MiB"]),
    429: (
        "Over the key's rate limit (see Retry-After)",
        "Too many requests",
        ["rate limit exceeded"],
    ),
    503: (
        "RabbitMQ or MongoDB unavailable; nothing was done (see Retry-After)",
        "Service unavailable",
        ["publish not confirmed: broker channel is closed"],
    ),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these status codes, each with the envelope and an example."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, message, error = _EXAMPLES[code]
        out[code] = {
            "model": ErrorEnvelope,
            "description": description,
            "content": {
                "application/json": {
                    "example": {"success": False, "message": message, "error": error}
                }
            },
        }
    return out


COMMON = errors(400, 401, 403, 413, 429, 503)


def without_fastapi_422(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop FastAPI's default 422 entries: bad input answers 400 with the envelope."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
