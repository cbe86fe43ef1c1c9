"""A fake Novu v1 API (seeds 001/002): triggers, bulk triggers, cancel, subscribers, sessions.

Speaks Novu's shapes: answers wrapped in `{"data": …}`, a trigger's `acknowledged` / `status` /
`transactionId` / `error`, errors as `{statusCode, timestamp, path, message, error}`, and the
rate-limit headers of a 429. A repeated transaction id is answered as the first time and
triggers nothing new (Novu dedupes on it).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["DEFAULT_API_KEY", "DEFAULT_APP_ID", "FakeNovu", "novu_error"]

DEFAULT_API_KEY = "nv-fake-secret-0123456789"
DEFAULT_APP_ID = "app-fake-identifier"
TRIGGER = "/v1/events/trigger"
BULK = "/v1/events/trigger/bulk"
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def novu_error(status: int, message: str | list[str], *, path: str = TRIGGER) -> dict[str, Any]:
    """Novu's error body."""
    return {
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(),
        "path": path,
        "message": message,
        "error": _REASONS.get(status, "Error"),
    }


class FakeNovu(FakeServer):
    """The Novu endpoints the service calls; `workflows` are the active workflow ids."""

    script_route = "trigger"  # `script` answers triggers (single); `script_bulk` bulk ones

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.workflows: set[str] = {"push-wf", "email-wf", "in-app-wf", "sms-wf", "chat-wf"}
        self.inactive: set[str] = set()  # known but inactive: `trigger_not_active`
        # subscriberId -> the status its triggers get instead of `processed`
        self.statuses: dict[str, str] = {}
        self.triggers: list[dict[str, Any]] = []  # accepted events, in order (bulk ones too)
        self.bulk_sizes: list[int] = []  # events per bulk request
        self.cancelled: list[str] = []
        self.subscribers: dict[str, dict[str, Any]] = {}
        self.deleted_subscribers: list[str] = []
        self.sessions: list[dict[str, Any]] = []
        self._answers: dict[str, dict[str, Any]] = {}  # transactionId -> first answer

    def routes(self) -> list[BaseRoute]:
        """Trigger, bulk, cancel, subscribers and the inbox session."""
        return [
            Route(BULK, self._bulk, methods=["POST"]),
            Route(TRIGGER, self._trigger, methods=["POST"]),
            Route(TRIGGER + "/{tid}", self._cancel, methods=["DELETE"]),
            Route("/v1/subscribers", self._create_subscriber, methods=["POST"]),
            Route("/v1/subscribers/{sid}", self._subscriber, methods=["PUT", "DELETE"]),
            Route("/v1/widgets/session/initialize", self._session, methods=["POST"]),
            # Not Novu's: what a local trial looks at (`curl <fake>/_fake/state`).
            Route("/_fake/state", self._state, methods=["GET"]),
        ]

    async def _state(self, request: Request) -> Response:
        return json_response(
            200,
            {
                "triggers": self.triggers,
                "bulkSizes": self.bulk_sizes,
                "cancelled": self.cancelled,
                "subscribers": self.subscribers,
                "sessions": self.sessions,
            },
        )

    def reset(self) -> None:
        """Forget everything recorded and scripted."""
        super().reset()
        for kept in (
            self.triggers,
            self.bulk_sizes,
            self.cancelled,
            self.deleted_subscribers,
            self.sessions,
        ):
            kept.clear()
        self.statuses.clear()
        self.subscribers.clear()
        self._answers.clear()

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """What `configure-provider` takes for this fake, a workflow per channel."""
        return {
            "apiKey": self.api_key,
            "workflowIds": {"PUSH": "push-wf", "EMAIL": "email-wf", "IN_APP": "in-app-wf"},
            "applicationIdentifier": DEFAULT_APP_ID,
            **extra,
        }

    def script_error(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        route: str = "trigger",
    ) -> None:
        """Answer the next requests of `route` (trigger, bulk, cancel, subscriber, session)."""
        self._script(route, status, body=novu_error(status, message), headers=headers, times=times)

    def script_rate_limit(self, *, retry_after_s: int = 7, times: int = 1) -> None:
        """429 with Novu's headers."""
        headers = {
            "Retry-After": str(retry_after_s),
            "RateLimit-Limit": "60",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(retry_after_s),
        }
        self.script_error(429, "API rate limit exceeded", headers=headers, times=times)

    def _authorized(self, recorded: RecordedRequest) -> Response | None:
        scheme, _, key = recorded.headers.get("authorization", "").partition(" ")
        if scheme != "ApiKey" or key != self.api_key:
            return json_response(401, novu_error(401, "API Key not found", path=recorded.path))
        return None

    def _judge(self, event: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, answer) of one event, as Novu would give it."""
        if not isinstance(event, dict) or not isinstance(event.get("name"), str):
            return 400, novu_error(400, ["name must be a string"])
        to = event.get("to")
        subscriber_id = to.get("subscriberId") if isinstance(to, dict) else to
        if not isinstance(subscriber_id, str) or not subscriber_id:
            return 400, novu_error(400, ["to.subscriberId should not be empty"])
        transaction_id = str(event.get("transactionId") or secrets.token_hex(8))
        if transaction_id in self._answers:
            return 201, self._answers[transaction_id]
        name = event["name"]
        if name not in self.workflows and name not in self.inactive:
            return 422, novu_error(422, f"workflow_not_found: {name}")
        status = (
            "trigger_not_active"
            if name in self.inactive
            else self.statuses.get(subscriber_id, "processed")
        )
        answer: dict[str, Any] = {
            "acknowledged": True,
            "status": status,
            "transactionId": transaction_id,
        }
        if status != "processed":
            answer["error"] = [f"{status} for {subscriber_id}"]
        else:
            self.accepted += 1
            if not self.lean:
                self.triggers.append(event)
            profile = {
                k: v for k, v in (to if isinstance(to, dict) else {}).items() if k != "channels"
            }
            self.subscribers.setdefault(subscriber_id, {}).update(profile)
        self._answers[transaction_id] = answer
        return 201, answer

    async def _trigger(self, request: Request) -> Response:
        return await self._answer(request, route="trigger", handle=self._accept_trigger)

    def _accept_trigger(self, recorded: RecordedRequest) -> Response:
        refused = self._authorized(recorded)
        if refused is not None:
            return refused
        status, answer = self._judge(recorded.json())
        return json_response(status, {"data": answer} if status == 201 else answer)

    async def _bulk(self, request: Request) -> Response:
        return await self._answer(request, route="bulk", handle=self._accept_bulk)

    def _accept_bulk(self, recorded: RecordedRequest) -> Response:
        refused = self._authorized(recorded)
        if refused is not None:
            return refused
        events = recorded.json().get("events")
        if not isinstance(events, list) or not events:
            return json_response(400, novu_error(400, ["events should not be empty"], path=BULK))
        if len(events) > 100:
            message = ["events must contain no more than 100 elements"]
            return json_response(400, novu_error(400, message, path=BULK))
        self.bulk_sizes.append(len(events))
        answers = []
        for event in events:
            status, answer = self._judge(event)
            if status != 201:  # in a bulk, an event Novu refuses reads as an error status
                answer = {
                    "acknowledged": True,
                    "status": "error",
                    "error": [str(answer.get("message"))],
                    "transactionId": event.get("transactionId"),
                }
            answers.append(answer)
        return json_response(201, {"data": answers})

    async def _cancel(self, request: Request) -> Response:
        tid = str(request.path_params["tid"])
        return await self._answer(request, route="cancel", handle=lambda r: self._do_cancel(r, tid))

    def _do_cancel(self, recorded: RecordedRequest, tid: str) -> Response:
        refused = self._authorized(recorded)
        if refused is not None:
            return refused
        self.cancelled.append(tid)
        return json_response(200, {"data": tid in self._answers})

    async def _create_subscriber(self, request: Request) -> Response:
        return await self._answer(request, route="subscriber", handle=self._do_create)

    def _do_create(self, recorded: RecordedRequest) -> Response:
        refused = self._authorized(recorded)
        if refused is not None:
            return refused
        body = recorded.json()
        sid = body["subscriberId"]
        self.subscribers[sid] = dict(body)
        return json_response(201, {"data": {"_id": secrets.token_hex(12), **body}})

    async def _subscriber(self, request: Request) -> Response:
        sid = str(request.path_params["sid"])
        return await self._answer(
            request, route="subscriber", handle=lambda r: self._do_subscriber(r, sid)
        )

    def _do_subscriber(self, recorded: RecordedRequest, sid: str) -> Response:
        refused = self._authorized(recorded)
        if refused is not None:
            return refused
        if sid not in self.subscribers:
            message = f"Subscriber: {sid} was not found"
            return json_response(404, novu_error(404, message, path=recorded.path))
        if recorded.method == "DELETE":
            del self.subscribers[sid]
            self.deleted_subscribers.append(sid)
            return json_response(200, {"data": {"acknowledged": True, "status": "deleted"}})
        self.subscribers[sid].update(recorded.json())
        return json_response(200, {"data": {"subscriberId": sid, **self.subscribers[sid]}})

    async def _session(self, request: Request) -> Response:
        return await self._answer(request, route="session", handle=self._do_session)

    def _do_session(self, recorded: RecordedRequest) -> Response:
        body = recorded.json()
        if body.get("applicationIdentifier") != DEFAULT_APP_ID:
            return json_response(
                400, novu_error(400, "Please provide a valid app identifier", path=recorded.path)
            )
        self.sessions.append(body)
        token = "novu-session-" + secrets.token_hex(8)
        profile = {"subscriberId": body.get("subscriberId"), "_id": secrets.token_hex(12)}
        return json_response(201, {"data": {"token": token, "profile": profile}})
