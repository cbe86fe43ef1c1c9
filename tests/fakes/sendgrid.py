"""A fake SendGrid v3 Mail Send API: real status codes, `errors` bodies and headers."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["DEFAULT_API_KEY", "FakeSendGrid", "sendgrid_errors"]

DEFAULT_API_KEY = "SG.fake-key.0123456789"
MAIL_SEND = "/v3/mail/send"
_ROUTE = "mail_send"
_ERRORS_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


def sendgrid_errors(*errors: tuple[str, str | None]) -> dict[str, Any]:
    """SendGrid's error body from `(message, field)` pairs."""
    return {
        "errors": [
            {"message": message, "field": field, "help": f"{_ERRORS_HELP}#message.{field}"}
            if field
            else {"message": message, "field": None, "help": None}
            for message, field in errors
        ]
    }


def _new_message_id() -> str:
    # SendGrid's X-Message-Id is 22 url-safe base64 characters.
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _is_address(value: object) -> bool:
    return isinstance(value, str) and "@" in value and not value.startswith("@")


def _validate(mail: Any) -> list[tuple[str, str | None]]:
    """The checks SendGrid applies to a Mail Send body, with its own messages."""
    if not isinstance(mail, dict):
        return [("Bad Request", None)]
    errors: list[tuple[str, str | None]] = []
    personalizations = mail.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            (
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        personalizations = []
    for i, personalization in enumerate(personalizations):
        to = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(
                (
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
            continue
        for j, recipient in enumerate(to):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not _is_address(email):
                errors.append(
                    ("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email")
                )
    sender = mail.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(
            (
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not _is_address(sender["email"]):
        errors.append(("The from email does not contain a valid address.", "from.email"))
    has_template = isinstance(mail.get("template_id"), str)
    every_personalization_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    subject = mail.get("subject")
    subject_missing = not isinstance(subject, str) or not subject
    if not has_template and not every_personalization_has_subject and subject_missing:
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )
    errors.extend(_validate_content(mail.get("content"), has_template=has_template))
    custom_args = mail.get("custom_args")
    if custom_args is not None and (
        not isinstance(custom_args, dict)
        or not all(isinstance(v, str) for v in custom_args.values())
    ):
        errors.append(("Custom args must be a map of string keys to string values.", "custom_args"))
    return errors


def _validate_content(content: Any, *, has_template: bool) -> list[tuple[str, str | None]]:
    if content is None and has_template:
        return []
    if not isinstance(content, list) or not content:
        return [
            (
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        ]
    errors: list[tuple[str, str | None]] = []
    types = [block.get("type") if isinstance(block, dict) else None for block in content]
    if "text/plain" in types and types[0] != "text/plain":
        errors.append(
            (
                "If present, text/plain content must be first, followed by text/html, followed "
                "by any other content.",
                "content",
            )
        )
    for i, block in enumerate(content):
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(value, str) or not value:
            errors.append(
                (
                    "The content value must be a string at least one character in length.",
                    f"content.{i}.value",
                )
            )
    return errors


class FakeSendGrid(FakeServer):
    """SendGrid's `POST /v3/mail/send`: auth, SendGrid's validation, 202 + `X-Message-Id`."""

    script_route = _ROUTE  # `script` answers sends

    def __init__(self, api_keys: Iterable[str] = (DEFAULT_API_KEY,)) -> None:
        super().__init__()
        self.api_keys: set[str] = set(api_keys)
        self.mails: list[dict[str, Any]] = []  # accepted bodies, in order
        self.message_ids: list[str] = []  # the X-Message-Id given to each accepted mail

    def routes(self) -> list[BaseRoute]:
        """The one route the adapter calls."""
        return [Route(MAIL_SEND, self._mail_send, methods=["POST"])]

    def reset(self) -> None:
        """Forget requests, mails and scripts; keep the accepted api keys."""
        super().reset()
        self.mails.clear()
        self.message_ids.clear()

    def script_error(
        self,
        status: int,
        message: str = "An internal server error occurred.",
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next sends with `status` and SendGrid's `errors` body."""
        self.script(status, body=sendgrid_errors((message, field)), headers=headers, times=times)

    def script_rate_limit(self, *, reset_in_s: int = 30, limit: int = 600, times: int = 1) -> None:
        """Answer the next sends with 429 and SendGrid's `X-RateLimit-*` headers."""
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + reset_in_s),
        }
        self.script_error(429, "too many requests", headers=headers, times=times)

    async def _mail_send(self, request: Request) -> Response:
        return await self._answer(request, route=_ROUTE, handle=self._accept)

    def _accept(self, recorded: RecordedRequest) -> Response:
        scheme, _, key = recorded.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key:
            return json_response(401, sendgrid_errors(("authorization required", None)))
        if key not in self.api_keys:
            return json_response(
                401,
                sendgrid_errors(
                    ("The provided authorization grant is invalid, expired, or revoked", None)
                ),
            )
        try:
            mail = recorded.json()
        except ValueError:
            return json_response(400, sendgrid_errors(("Bad Request", None)))
        errors = _validate(mail)
        if errors:
            return json_response(400, sendgrid_errors(*errors))
        message_id = _new_message_id()
        self.accepted += 1
        if not self.lean:
            self.mails.append(mail)
            self.message_ids.append(message_id)
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    def mails_to(self, address: str) -> list[dict[str, Any]]:
        """Accepted mails whose first personalization addresses `address`."""
        return [m for m in self.mails if m["personalizations"][0]["to"][0]["email"] == address]
