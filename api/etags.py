"""Entity tags for GET responses: a poller sends `If-None-Match` and gets a bodiless 304 while
nothing changed (RFC 9110 §8.8.3, §13.1.2)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.responses import Response

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag sent in If-None-Match still holds"}
}


def etag_of(payload: bytes) -> str:
    """A strong tag of exactly these bytes."""
    return f'"{hashlib.blake2b(payload, digest_size=12).hexdigest()}"'


def none_match(header: str | None, etag: str) -> bool:
    """True unless `If-None-Match` names this tag (weak comparison) or is `*`."""
    if not header:
        return True
    tags = [t.strip() for t in header.split(",")]
    return not any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def json_with_etag(content: Any, *, if_none_match: str | None) -> Response:
    """The JSON body with its ETag, or a 304 carrying the same ETag when the client has it.

    `private, no-cache`: only the caller may keep it, and must ask again before reusing it.
    """
    payload = orjson.dumps(content)
    tag = etag_of(payload)
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if not none_match(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(content=payload, media_type="application/json", headers=headers)
