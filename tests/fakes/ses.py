"""A fake Amazon SES v2 `SendEmail`: SigV4 checked with botocore's own signer, REST-JSON errors
named in the `x-amzn-ErrorType` header, 200 `{"MessageId"}`, and verified sender identities."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["DEFAULT_ACCESS_KEY", "DEFAULT_SECRET_KEY", "FakeSes", "ses_error"]

DEFAULT_ACCESS_KEY = "AKIAFAKE0123456789AB"
DEFAULT_SECRET_KEY = "fake/secret/key/0123456789abcdefghijklmn"
SEND_EMAIL = "/v2/email/outbound-emails"
_ROUTE = "send_email"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<sig>[0-9a-f]+)$"
)


def ses_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], dict[str, str]]:
    """(status, headers, body) of an SES v2 error as the service sends it."""
    return status, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"}, {"message": message}


class FakeSes(FakeServer):
    """SES v2 `POST /v2/email/outbound-emails`."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.keys = dict(keys or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY})
        self.verified: set[str] = {"acme.test"}  # sender domains or addresses
        self.emails: list[dict[str, Any]] = []  # accepted SendEmail bodies, in order
        self.message_ids: list[str] = []

    def routes(self) -> list[BaseRoute]:
        """The one route the adapter calls."""
        return [Route(SEND_EMAIL, self._send, methods=["POST"])]

    def reset(self) -> None:
        """Forget requests, mails and scripts; identities back to `acme.test`."""
        super().reset()
        self.verified = {"acme.test"}
        self.emails.clear()
        self.message_ids.clear()

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """What `configure-provider` takes for the default key."""
        return {
            "accessKeyId": DEFAULT_ACCESS_KEY,
            "secretAccessKey": DEFAULT_SECRET_KEY,
            "region": "us-east-1",
            "fromEmail": "noreply@acme.test",
            **extra,
        }

    def script_error(self, status: int, code: str, message: str = "", *, times: int = 1) -> None:
        """Answer the next sends with an SES error."""
        status, headers, body = ses_error(status, code, message or code)
        self._script(_ROUTE, status, body=body, headers=headers, times=times)

    async def _send(self, request: Request) -> Response:
        url = str(request.url)
        return await self._answer(request, route=_ROUTE, handle=lambda r: self._accept(r, url))

    def _error(self, status: int, code: str, message: str) -> Response:
        status, headers, body = ses_error(status, code, message)
        return json_response(status, body, headers=headers)

    def _accept(self, recorded: RecordedRequest, url: str) -> Response:
        problem = self._check_signature(recorded, url)
        if problem is not None:
            return self._error(403, *problem)
        try:
            body = recorded.json()
        except ValueError:
            return self._error(400, "BadRequestException", "Invalid JSON")
        sender = str(body.get("FromEmailAddress") or "")
        address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
        domain = address.rsplit("@", 1)[-1]
        if address not in self.verified and domain not in self.verified:
            return self._error(
                400,
                "MessageRejected",
                f"Email address is not verified. The following identities failed the check in "
                f"region US-EAST-1: {address}",
            )
        to = (body.get("Destination") or {}).get("ToAddresses") or []
        for recipient in to:
            if "@" not in recipient or recipient.startswith("@") or recipient.endswith("@"):
                return self._error(400, "BadRequestException", f"Illegal address: {recipient}")
        simple = (body.get("Content") or {}).get("Simple") or {}
        if not (simple.get("Subject") or {}).get("Data"):
            return self._error(400, "BadRequestException", "Missing required field Subject")
        message_id = f"0100018{secrets.token_hex(8)}-{secrets.token_hex(4)}-000000"
        self.accepted += 1
        if not self.lean:
            self.emails.append(body)
            self.message_ids.append(message_id)
        return json_response(200, {"MessageId": message_id})

    def _check_signature(self, recorded: RecordedRequest, url: str) -> tuple[str, str] | None:
        """Recompute the SigV4 signature with the secret of the key named, as AWS does."""
        match = _AUTH.match(recorded.headers.get("authorization", ""))
        if match is None:
            return "MissingAuthenticationTokenException", "Missing Authentication Token"
        secret = self.keys.get(match["key"])
        if secret is None:
            return (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        signed = match["signed"].split(";")
        request = AWSRequest(
            method=recorded.method,
            url=url,
            data=recorded.body,
            headers={name: recorded.headers.get(name, "") for name in signed},
        )
        signer = SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
        request.context["timestamp"] = recorded.headers.get("x-amz-date", "")
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != match["sig"]:
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None
