"""A fake Discord Execute Webhook: `?wait=true` answers the message, errors as `{message, code}`,
429 with `retry_after` in the body and `Retry-After` / `X-RateLimit-*` headers."""

from __future__ import annotations

import itertools
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["FakeDiscord"]

_ROUTE = "execute"


class FakeDiscord(FakeServer):
    """`POST /api/webhooks/{id}/{token}`."""

    script_route = _ROUTE

    def __init__(self) -> None:
        super().__init__()
        self.deleted_webhooks: set[str] = set()  # ids: 404 10015 Unknown Webhook
        self.revoked_tokens: set[str] = set()  # 401 50027 Invalid Webhook Token
        self.messages: list[dict[str, Any]] = []  # accepted bodies (+ "_webhook": id)
        self._ids = itertools.count(1_200_000_000_000_000_000)

    def routes(self) -> list[BaseRoute]:
        """The webhook route (with and without the /v10 prefix)."""
        return [
            Route("/api/webhooks/{id}/{token}", self._execute, methods=["POST"]),
            Route("/api/v10/webhooks/{id}/{token}", self._execute, methods=["POST"]),
        ]

    def reset(self) -> None:
        """Forget requests, messages, dead webhooks and scripts."""
        super().reset()
        self.deleted_webhooks.clear()
        self.revoked_tokens.clear()
        self.messages.clear()

    def webhook_url(self, webhook_id: str = "112233445566778899", token: str = "tok") -> str:
        """A webhook URL on this fake (the shape Discord issues)."""
        return f"{self.url}/api/webhooks/{webhook_id}/{token}"

    def script_rate_limit(self, *, retry_after: float = 1.5, times: int = 1) -> None:
        """Answer the next requests with Discord's 429."""
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
            "X-RateLimit-Bucket": "fakebucket",
            "X-RateLimit-Scope": "shared",
        }
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
        }
        self.script(429, body=body, headers=headers, times=times)

    async def _execute(self, request: Request) -> Response:
        webhook_id, token = str(request.path_params["id"]), str(request.path_params["token"])
        return await self._answer(
            request, route=_ROUTE, handle=lambda r: self._accept(r, webhook_id, token)
        )

    def _accept(self, recorded: RecordedRequest, webhook_id: str, token: str) -> Response:
        if webhook_id in self.deleted_webhooks:
            return json_response(404, {"message": "Unknown Webhook", "code": 10015})
        if token in self.revoked_tokens:
            return json_response(401, {"message": "Invalid Webhook Token", "code": 50027})
        try:
            body = recorded.json()
        except ValueError:
            return json_response(400, {"message": "Invalid Form Body", "code": 50035})
        content = body.get("content") if isinstance(body, dict) else None
        if not content:
            return json_response(400, {"message": "Cannot send an empty message", "code": 50006})
        if not isinstance(content, str) or len(content) > 2000:
            return json_response(
                400,
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
            )
        self.accepted += 1
        if not self.lean:
            self.messages.append({**body, "_webhook": webhook_id})
        if "wait=true" not in recorded.query:
            return Response(status_code=204)
        message_id = str(next(self._ids))
        return json_response(
            200,
            {
                "id": message_id,
                "type": 0,
                "content": content,
                "channel_id": "1100000000000000001",
                "webhook_id": webhook_id,
                "author": {"id": webhook_id, "username": "notify", "bot": True},
            },
        )
