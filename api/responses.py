"""A JSON response rendered with orjson, for bodies built by hand (errors, health)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JsonResponse(Response):
    """`application/json` via orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize `content`."""
        return orjson.dumps(content)
