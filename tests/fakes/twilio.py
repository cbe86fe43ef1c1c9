"""A fake Twilio Messages API: basic auth, form bodies, Twilio's error codes and JSON shapes."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilio", "twilio_error"]

DEFAULT_ACCOUNT_SID = "AC" + "f" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
_ROUTE = "messages"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's legacy error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(FakeServer):
    """`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, answering 201 `queued`."""

    script_route = _ROUTE

    def __init__(self, accounts: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.accounts = dict(accounts or {DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN})
        self.invalid_numbers: set[str] = set()  # 21211
        self.landlines: set[str] = set()  # 21614
        self.opted_out: set[str] = set()  # 21610 (replied STOP)
        self.messages: list[dict[str, str]] = []  # accepted forms, in order
        self.sids: list[str] = []

    def routes(self) -> list[BaseRoute]:
        """The one route the adapter calls."""
        return [Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create, methods=["POST"])]

    def reset(self) -> None:
        """Forget requests, messages, number sets and scripts; keep the accounts."""
        super().reset()
        self.invalid_numbers.clear()
        self.landlines.clear()
        self.opted_out.clear()
        self.messages.clear()
        self.sids.clear()

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """What `configure-provider` takes for the default account."""
        return {
            "accountSid": DEFAULT_ACCOUNT_SID,
            "authToken": DEFAULT_AUTH_TOKEN,
            "fromNumber": "+15005550006",
            **extra,
        }

    def script_error(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next requests with Twilio's error body."""
        self.script(status, body=twilio_error(code, message, status), headers=headers, times=times)

    async def _create(self, request: Request) -> Response:
        sid = str(request.path_params["sid"])
        return await self._answer(request, route=_ROUTE, handle=lambda r: self._accept(r, sid))

    def _accept(self, recorded: RecordedRequest, sid: str) -> Response:
        scheme, _, encoded = recorded.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user, password = "", ""
        if scheme != "Basic" or self.accounts.get(user) != password or user != sid:
            return json_response(401, twilio_error(20003, "Authenticate", 401))
        form = recorded.form()
        to = form.get("To", "")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return json_response(
                400, twilio_error(21603, "A 'From' phone number is required.", 400)
            )
        if not form.get("Body"):
            return json_response(400, twilio_error(21602, "Message body is required.", 400))
        if not _E164.match(to) or to in self.invalid_numbers:
            text = f"The 'To' number {to} is not a valid phone number."
            return json_response(400, twilio_error(21211, text, 400))
        if to in self.landlines:
            return json_response(
                400, twilio_error(21614, "'To' number is not a valid mobile number", 400)
            )
        if to in self.opted_out:
            text = "Attempt to send to unsubscribed recipient"
            return json_response(400, twilio_error(21610, text, 400))
        message_sid = "SM" + secrets.token_hex(16)
        self.accepted += 1
        if not self.lean:
            self.messages.append(form)
            self.sids.append(message_sid)
        return json_response(
            201,
            {
                "sid": message_sid,
                "account_sid": sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
            },
        )
