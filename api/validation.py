"""Turns pydantic's validation errors into messages that name the field and the rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":  # FastAPI's prefix for the request body, not a field
        parts = parts[1:]
    out = ""
    for part in parts:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "body"


def describe_error(error: dict[str, Any]) -> str:
    """One message, e.g. `priority must not be greater than 5`."""
    field = _field(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{field} is required"
    if kind == "json_invalid":
        return "body must be valid JSON"
    if kind in ("model_attributes_type", "dict_type") and field == "body":
        return "body must be a JSON object"
    if kind == "less_than_equal":
        return f"{field} must not be greater than {ctx.get('le')}"
    if kind == "greater_than_equal":
        return f"{field} must not be less than {ctx.get('ge')}"
    if kind == "less_than":
        return f"{field} must be less than {ctx.get('lt')}"
    if kind == "greater_than":
        return f"{field} must be greater than {ctx.get('gt')}"
    if kind in ("int_type", "int_parsing", "float_type", "float_parsing", "int_from_float"):
        return (
            f"{field} must be a whole number"
            if kind.startswith("int")
            else f"{field} must be a number"
        )
    if kind in ("string_type",):
        return f"{field} must be a string"
    if kind == "string_too_short":
        return (
            f"{field} should not be empty"
            if ctx.get("min_length") == 1
            else f"{field} must be at least {ctx.get('min_length')} characters"
        )
    if kind == "string_too_long":
        return f"{field} must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"{field} must contain at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"{field} must contain at most {ctx.get('max_length')} items"
    if kind in ("dict_type", "model_type", "model_attributes_type"):  # a nested object
        return f"{field} must be an object"
    if kind == "list_type":
        return f"{field} must be an array"
    if kind == "bool_type" or kind == "bool_parsing":
        return f"{field} must be a boolean"
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{field} must be one of the following values: {expected}"
    if kind == "uuid_parsing" or kind == "uuid_type":
        return f"{field} must be a valid UUID"
    if kind == "timezone_aware":
        return f"{field} must include a time zone, e.g. 2025-01-31T12:00:00Z"
    if kind.startswith("datetime"):
        return f"{field} must be an ISO-8601 date-time such as 2025-01-31T12:00:00Z"
    if kind == "string_pattern_mismatch":
        return f"{field} has an invalid format"
    if kind == "extra_forbidden":
        return f"{field} is not an allowed field"
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "is invalid")))
        return message if field == "body" else f"{field} {message}"
    return f"{field}: {error.get('msg', 'is invalid')}"


def describe_errors(errors: Sequence[Any]) -> list[str]:
    """Every message, in order, without repeats."""
    seen: dict[str, None] = {}
    for error in errors:
        seen.setdefault(describe_error(dict(error)), None)
    return list(seen)
