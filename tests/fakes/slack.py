"""A fake Slack: incoming webhooks (`/services/...`, plain-text answers) and `chat.postMessage`
(HTTP 200 even for errors, `{"ok": false, "error"}`), as Slack answers them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["DEFAULT_BOT_TOKEN", "FakeSlack"]

DEFAULT_BOT_TOKEN = "xoxb-fake-0123456789"
_HOOK, _API = "webhook", "api"


class FakeSlack(FakeServer):
    """Webhooks under `/services/T…/B…/…` and the Web API's `/api/chat.postMessage`."""

    def __init__(self, bot_tokens: tuple[str, ...] = (DEFAULT_BOT_TOKEN,)) -> None:
        super().__init__()
        self.bot_tokens = set(bot_tokens)
        self.channels: set[str] = {"C0123456789"}  # channels the bot is a member of
        self.archived_channels: set[str] = set()
        # webhook path -> (status, text): 404 no_service, 403 invalid_token, 410 channel_is_archived
        self.dead_webhooks: dict[str, tuple[int, str]] = {}
        self.posts: list[dict[str, Any]] = []  # accepted bodies (+ "_to": path or channel)
        self._ts = itertools.count(100)

    def routes(self) -> list[BaseRoute]:
        """Webhooks and chat.postMessage."""
        return [
            Route("/services/{path:path}", self._webhook, methods=["POST"]),
            Route("/api/chat.postMessage", self._post_message, methods=["POST"]),
        ]

    def reset(self) -> None:
        """Forget requests, posts and scripts; channels back to the default one."""
        super().reset()
        self.channels = {"C0123456789"}
        self.archived_channels.clear()
        self.dead_webhooks.clear()
        self.posts.clear()

    def webhook_url(self, name: str = "hook") -> str:
        """A webhook URL on this fake (the shape Slack issues)."""
        return f"{self.url}/services/T0FAKE/B0FAKE/{name}"

    def kill_webhook(self, url: str, status: int = 404, text: str = "no_service") -> None:
        """Make a webhook answer as a deleted (404), revoked (403) or archived (410) one."""
        self.dead_webhooks["/services/" + url.split("/services/", 1)[1]] = (status, text)

    def script_webhook(
        self, status: int, body: str, *, headers: Mapping[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next webhook posts with exactly this."""
        self._script(_HOOK, status, body=body, headers=headers, times=times)

    def script_api(
        self,
        status: int,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next chat.postMessage calls with exactly this."""
        self._script(_API, status, body=body, headers=headers, times=times)

    async def _webhook(self, request: Request) -> Response:
        return await self._answer(request, route=_HOOK, handle=self._accept_webhook)

    async def _post_message(self, request: Request) -> Response:
        return await self._answer(request, route=_API, handle=self._accept_api)

    def _accept_webhook(self, recorded: RecordedRequest) -> Response:
        dead = self.dead_webhooks.get(recorded.path)
        if dead is not None:
            return PlainTextResponse(dead[1], status_code=dead[0])
        try:
            body = recorded.json()
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return PlainTextResponse("no_text", status_code=400)
        self.accepted += 1
        if not self.lean:
            self.posts.append({**body, "_to": recorded.path})
        return PlainTextResponse("ok")

    def _accept_api(self, recorded: RecordedRequest) -> Response:
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return json_response(200, {"ok": False, "error": "not_authed"})
        if token not in self.bot_tokens:
            return json_response(200, {"ok": False, "error": "invalid_auth"})
        try:
            body = recorded.json()
        except ValueError:
            return json_response(200, {"ok": False, "error": "invalid_json"})
        channel = body.get("channel") if isinstance(body, dict) else None
        if channel in self.archived_channels:
            return json_response(200, {"ok": False, "error": "is_archived"})
        if channel not in self.channels:
            return json_response(200, {"ok": False, "error": "channel_not_found"})
        if not body.get("text"):
            return json_response(200, {"ok": False, "error": "no_text"})
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        self.accepted += 1
        if not self.lean:
            self.posts.append({**body, "_to": channel})
        return json_response(
            200,
            {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"type": "message", "text": body["text"], "ts": ts, "bot_id": "B0FAKE"},
            },
        )
