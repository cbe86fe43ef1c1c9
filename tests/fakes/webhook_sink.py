"""A tenant's webhook endpoint: records what it receives; can fail, or hang until released."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest

__all__ = ["WebhookSink"]


class WebhookSink(FakeServer):
    """`POST /hook` answers 204; `script` answers differently, `hold` hangs it."""

    script_route = "hook"
    echo = False  # print each request as a JSON line (a local trial)

    def routes(self) -> list[BaseRoute]:
        """The one endpoint."""
        return [Route("/hook", self._hook, methods=["POST"])]

    @property
    def hook_url(self) -> str:
        """What `manage/create-webhook` is given."""
        return f"{self.url}/hook"

    async def _hook(self, request: Request) -> Response:
        return await self._answer(request, route="hook", handle=self._accept)

    def _accept(self, recorded: RecordedRequest) -> Response:
        self.accepted += 1
        if self.echo:
            signed = {k: v for k, v in recorded.headers.items() if k.startswith("webhook-")}
            print(json.dumps({"headers": signed, "body": recorded.json()}), flush=True)
        return Response(status_code=204)
