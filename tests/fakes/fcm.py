"""A fake Google OAuth token endpoint plus FCM HTTP v1 `messages:send`, in their wire formats.

`service_account_json()` mints a service account with a fresh RSA key whose `token_uri` points
here; the token endpoint verifies the RS256 JWT assertion against that key like Google does, and
`messages:send` only accepts bearer tokens this fake issued.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["FakeFcm", "fcm_error"]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
INVALID_TOKEN_TEXT = "The registration token is not a valid FCM registration token"
_SEND_ROUTE = "send"
_TOKEN_ROUTE = "token"
_MESSAGE_FIELDS = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "fcmOptions",
        "token",
        "topic",
        "condition",
    }
)
_NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
_ANDROID_PRIORITIES = frozenset({"NORMAL", "HIGH", "normal", "high"})
_GRPC_CODES = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}


def fcm_error(
    status: str,
    message: str,
    *,
    code: int | None = None,
    error_code: str | None = None,
    field_violations: Iterable[tuple[str | None, str]] = (),
    extra_details: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """FCM v1's `{"error": {...}}` body; `field_violations` are `(field, description)` pairs."""
    details: list[dict[str, Any]] = []
    if error_code is not None:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    violations = [
        {"field": f, "description": d} if f is not None else {"description": d}
        for f, d in field_violations
    ]
    if violations:
        details.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations})
    details.extend(extra_details)
    error: dict[str, Any] = {
        "code": code if code is not None else _GRPC_CODES.get(status, 500),
        "message": message,
        "status": status,
    }
    if details:
        error["details"] = details
    return {"error": error}


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _token_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})


def _invalid_argument(message: str, field: str | None) -> Response:
    return json_response(
        400,
        fcm_error(
            "INVALID_ARGUMENT",
            message,
            error_code="INVALID_ARGUMENT",
            field_violations=[(field, message)],
        ),
    )


@dataclass(frozen=True, slots=True)
class _Account:
    client_email: str
    private_key_id: str
    public_key: rsa.RSAPublicKey
    project_id: str


@dataclass(frozen=True, slots=True)
class _Grant:
    client_email: str
    project_id: str
    scopes: frozenset[str]
    expires_at: float


class FakeFcm(FakeServer):
    """Google's OAuth `POST /token` and FCM v1 `POST /v1/projects/{project}/messages:send`."""

    script_route = _SEND_ROUTE  # `script` answers sends

    def __init__(self, *, project_id: str = "fake-project", token_lifetime_s: int = 3600) -> None:
        super().__init__()
        self.project_id = project_id
        self.token_lifetime_s = token_lifetime_s  # `expires_in` of tokens issued from now on
        self.unregistered_tokens: set[str] = set()  # answer 404 UNREGISTERED
        self.invalid_tokens: set[str] = set()  # answer 400 INVALID_ARGUMENT on message.token
        self.messages: list[dict[str, Any]] = []  # accepted `message` objects, in order
        self.message_names: list[str] = []  # the `name` answered for each accepted message
        self.tokens_issued = 0
        self._accounts: dict[str, _Account] = {}
        self._grants: dict[str, _Grant] = {}

    def routes(self) -> list[BaseRoute]:
        """The token endpoint and `messages:send`."""
        return [
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
        ]

    @property
    def token_url(self) -> str:
        """Where minted service accounts send their JWT grant."""
        return f"{self.url}/token"

    @property
    def token_requests(self) -> list[RecordedRequest]:
        """Requests received by the token endpoint."""
        return self.requests_to("/token")

    @property
    def send_requests(self) -> list[RecordedRequest]:
        """Requests received by `messages:send`."""
        return self.requests_to("/messages:send")

    def reset(self) -> None:
        """Forget requests, messages, issued tokens, token sets and scripts; keep accounts."""
        super().reset()
        self.messages.clear()
        self.message_names.clear()
        self.unregistered_tokens.clear()
        self.invalid_tokens.clear()
        self._grants.clear()
        self.tokens_issued = 0

    def service_account_json(
        self, *, project_id: str | None = None, registered: bool = True
    ) -> str:
        """A service-account JSON with a fresh RSA key; unregistered ones get `invalid_grant`."""
        project = project_id or self.project_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        key_id = secrets.token_hex(20)
        email = f"fake-{secrets.token_hex(4)}@{project}.iam.gserviceaccount.com"
        if registered:
            self._accounts[email] = _Account(email, key_id, key.public_key(), project)
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
            "universe_domain": "googleapis.com",
        }
        return json.dumps(info)

    def revoke_service_account(self, service_account_json: str) -> None:
        """Delete the account's key: its next grants fail with `invalid_grant`."""
        self._accounts.pop(json.loads(service_account_json)["client_email"], None)

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token: sends answer 401 UNAUTHENTICATED."""
        self._grants.clear()

    def script_error(
        self,
        status: str,
        message: str,
        *,
        error_code: str | None = None,
        field_violations: Iterable[tuple[str | None, str]] = (),
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next sends with FCM's error body for a google.rpc `status`."""
        body = fcm_error(status, message, error_code=error_code, field_violations=field_violations)
        self.script(body["error"]["code"], body=body, headers=headers, times=times)

    def script_token(
        self,
        status: int,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` token requests with exactly this."""
        self._script(_TOKEN_ROUTE, status, body=body, headers=headers, times=times)

    async def _token(self, request: Request) -> Response:
        return await self._answer(request, route=_TOKEN_ROUTE, handle=self._grant, hold=False)

    async def _send(self, request: Request) -> Response:
        project = str(request.path_params["project"])
        return await self._answer(
            request, route=_SEND_ROUTE, handle=lambda rec: self._deliver(rec, project)
        )

    def _grant(self, recorded: RecordedRequest) -> Response:
        form = recorded.form()
        grant_type = form.get("grant_type", "")
        if grant_type != JWT_BEARER_GRANT:
            return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        claims_or_error = self._verify_assertion(form.get("assertion", ""))
        if isinstance(claims_or_error, Response):
            return claims_or_error
        account, claims = claims_or_error
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return _token_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        self._grants[token] = _Grant(
            client_email=account.client_email,
            project_id=account.project_id,
            scopes=scopes,
            expires_at=time.time() + self.token_lifetime_s,
        )
        self.tokens_issued += 1
        return json_response(
            200,
            {"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"},
        )

    def _verify_assertion(self, assertion: str) -> tuple[_Account, dict[str, Any]] | Response:
        """Check the JWT like Google: known key, RS256 signature, audience and lifetime."""
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            return _token_error("invalid_grant", "Invalid JWT: malformed assertion.")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return _token_error("invalid_grant", "Invalid JWT: malformed assertion.")
        account = self._accounts.get(str(claims.get("iss")))
        if account is None:
            return _token_error("invalid_grant", "Invalid grant: account not found")
        if header.get("alg") != "RS256" or header.get("kid") != account.private_key_id:
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        try:
            account.public_key.verify(
                signature,
                f"{header_b64}.{payload_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_url):
            return _token_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is "
                f"{GOOGLE_TOKEN_AUDIENCE}",
            )
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or exp <= now
            or iat > now + 300
            or exp - iat > 3600
        ):
            return _token_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        return account, claims

    def _authenticate(self, recorded: RecordedRequest, project: str) -> Response | None:
        """FCM's answer to a missing, unknown, expired or misplaced bearer token, if any."""
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        grant = self._grants.get(token) if scheme == "Bearer" else None
        if grant is None or grant.expires_at <= time.time():
            return json_response(
                401,
                fcm_error(
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                ),
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    'error="invalid_token"'
                },
            )
        if not grant.scopes & FCM_SCOPES:
            return json_response(
                403,
                fcm_error(
                    "PERMISSION_DENIED",
                    "Request had insufficient authentication scopes.",
                    extra_details=[
                        {
                            "@type": ERROR_INFO_TYPE,
                            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                            "domain": "googleapis.com",
                        }
                    ],
                ),
            )
        if grant.project_id != project:
            return json_response(
                403,
                fcm_error(
                    "PERMISSION_DENIED",
                    "Permission 'cloudmessaging.messages.create' denied on resource "
                    f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                    "(or it may not exist).",
                    extra_details=[
                        {
                            "@type": ERROR_INFO_TYPE,
                            "reason": "IAM_PERMISSION_DENIED",
                            "domain": "cloudresourcemanager.googleapis.com",
                            "metadata": {
                                "permission": "cloudmessaging.messages.create",
                                "resource": f"projects/{project}",
                            },
                        }
                    ],
                ),
            )
        return None

    def _deliver(self, recorded: RecordedRequest, project: str) -> Response:
        refusal = self._authenticate(recorded, project)
        if refusal is not None:
            return refusal
        try:
            body = recorded.json()
        except ValueError:
            text = "Invalid JSON payload received. Unexpected token."
            return json_response(
                400, fcm_error("INVALID_ARGUMENT", text, field_violations=[(None, text)])
            )
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return _invalid_argument("Request contains an invalid argument.", "message")
        refusal = _check_message(message)
        if refusal is not None:
            return refusal
        token = message.get("token")
        if token is not None:
            if not isinstance(token, str) or not token or token in self.invalid_tokens:
                return _invalid_argument(INVALID_TOKEN_TEXT, "message.token")
            if token in self.unregistered_tokens:
                return json_response(
                    404,
                    fcm_error(
                        "NOT_FOUND", "Requested entity was not found.", error_code="UNREGISTERED"
                    ),
                )
        name = f"projects/{project}/messages/0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        self.accepted += 1
        if not self.lean:
            self.messages.append(message)
            self.message_names.append(name)
        return json_response(200, {"name": name})


def _check_message(message: dict[str, Any]) -> Response | None:
    """The shape checks FCM applies to a `message`, with its messages; None when valid."""
    for key in message:
        if key not in _MESSAGE_FIELDS:
            return _unknown_field(key, "message")
    targets = [t for t in ("token", "topic", "condition") if t in message]
    if not targets:
        return _invalid_argument("Recipient of the message is not set.", "message")
    if len(targets) > 1:
        return _invalid_argument(
            f"Invalid value at 'message' (oneof), oneof field 'target' is already set. "
            f"Cannot set '{targets[1]}'",
            "message",
        )
    notification = message.get("notification", {})
    if not isinstance(notification, dict):
        return _invalid_argument("Invalid value at 'message.notification'", "message.notification")
    for key, value in notification.items():
        if key not in _NOTIFICATION_FIELDS:
            return _unknown_field(key, "message.notification")
        if not isinstance(value, str):
            return _invalid_argument(
                f"Invalid value at 'message.notification.{key}' (TYPE_STRING), {value!r}",
                f"message.notification.{key}",
            )
    data = message.get("data", {})
    if not isinstance(data, dict):
        return _invalid_argument("Invalid value at 'message.data'", "message.data")
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            return _invalid_argument(
                f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value!r}",
                f"message.data[{index}].value",
            )
        if key == "from" or key.startswith(("google.", "gcm.")):
            return _invalid_argument(f"Invalid data payload key: {key}", "message.data")
    android = message.get("android", {})
    priority = android.get("priority") if isinstance(android, dict) else None
    if priority is not None and priority not in _ANDROID_PRIORITIES:
        return _invalid_argument(
            "Invalid value at 'message.android.priority' "
            f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), {priority!r}",
            "message.android.priority",
        )
    apns = message.get("apns", {})
    headers = apns.get("headers", {}) if isinstance(apns, dict) else None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return _invalid_argument(
            "Invalid value at 'message.apns.headers': values must be strings",
            "message.apns.headers",
        )
    return None


def _unknown_field(key: str, where: str) -> Response:
    text = f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
    return json_response(400, fcm_error("INVALID_ARGUMENT", text, field_violations=[(where, text)]))
