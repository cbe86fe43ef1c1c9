"""Twilio SMS adapter: `POST /2010-04-01/Accounts/<sid>/Messages.json`, form-encoded, basic auth.

The SDK's exceptions carry no response headers (a 429's `Retry-After` is lost) and its sync
client has no timeout (DESIGN.md §8), so the adapter posts the form itself over the worker's
shared `httpx.AsyncClient`; httpx never retries on its own.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Self

import httpx
from pydantic import Field, field_validator, model_validator

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.providers.http import classify_transport_error, parse_retry_after, read_json
from shared.providers.spec import CredentialModel, ProviderSpec, RequiredText, http_adapter

DEFAULT_BASE_URL = "https://api.twilio.com"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# An SMS body longer than this is refused (21617); cut it rather than lose the message.
MAX_BODY = 1600

# Twilio error codes (https://www.twilio.com/docs/api/errors) and what they say about the message.
DEAD_NUMBER_CODES = frozenset({21211, 21614, 21612, 21217, 21401, 21407})  # the To number
OPTED_OUT_CODES = frozenset({21610})  # the recipient replied STOP
AUTH_CODES = frozenset({20003, 20005, 20008})  # authenticate / account suspended or closed
RATE_CODES = frozenset({20429, 14107})


class TwilioCredentials(CredentialModel):
    """`{accountSid, authToken, fromNumber | messagingServiceSid}`."""

    account_sid: RequiredText = Field(alias="accountSid")
    auth_token: RequiredText = Field(alias="authToken", repr=False)
    from_number: str | None = Field(default=None, alias="fromNumber")
    messaging_service_sid: str | None = Field(default=None, alias="messagingServiceSid")
    # Where Twilio posts status callbacks (receipts): this service's public
    # `/webhooks/twilio?tenant=<tenant id>` (docs/webhooks.md).
    status_callback_url: str | None = Field(default=None, alias="statusCallbackUrl")

    @field_validator("status_callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("account_sid")
    @classmethod
    def _account(cls, value: str) -> str:
        if not value.startswith("AC"):
            raise ValueError("must be an account SID (AC…)")
        return value

    @field_validator("from_number")
    @classmethod
    def _from(cls, value: str | None) -> str | None:
        if value is not None and not _E164.match(value):
            raise ValueError("must be an E.164 phone number such as +14155550100")
        return value

    @field_validator("messaging_service_sid")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("MG"):
            raise ValueError("must be a messaging service SID (MG…)")
        return value

    @model_validator(mode="after")
    def _a_sender(self) -> Self:
        if self.from_number is None and self.messaging_service_sid is None:
            raise ValueError("must include fromNumber or messagingServiceSid")
        return self


class TwilioProvider:
    """Delivers SMS through Twilio's Messages API."""

    name = "TWILIO"

    def __init__(
        self,
        *,
        credentials: TwilioCredentials,
        endpoint: str | None,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        base = (endpoint or DEFAULT_BASE_URL).rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{credentials.account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(credentials.account_sid, credentials.auth_token)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST one SMS; never raises for provider failures."""
        c = self._credentials
        form = {"To": message.to, "Body": sms_text(message)}
        # A messaging service picks the sender from its pool; it wins over a single number.
        if c.messaging_service_sid:
            form["MessagingServiceSid"] = c.messaging_service_sid
        elif c.from_number:
            form["From"] = c.from_number
        if c.status_callback_url:
            form["StatusCallback"] = c.status_callback_url
        try:
            response = await self._http.post(
                self._url, data=form, auth=self._auth, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            return classify_transport_error(exc)
        return classify_response(response)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the worker."""


def sms_text(message: OutboundMessage) -> str:
    """The SMS body: the title (when there is one) and the body, within Twilio's limit."""
    title = message.title or message.subject
    text = f"{title}\n{message.body}" if title else message.body
    return text[:MAX_BODY]


def classify_response(response: httpx.Response) -> DeliveryResult:
    """Classify a Messages API answer (legacy `{code, message}` or RFC 9457 bodies alike)."""
    status = response.status_code
    payload = read_json(response)
    body = payload if isinstance(payload, dict) else {}
    if 200 <= status < 300:
        sid = body.get("sid")
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=sid if isinstance(sid, str) else None,
            status_code=status,
        )
    code = body.get("code")
    code = code if isinstance(code, int) else None
    text = body.get("message") or body.get("detail") or body.get("title")
    detail = f"{code}: {text}" if code and text else (str(text) if text else f"HTTP {status}")
    reason = str(code) if code else f"HTTP_{status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    result = partial(DeliveryResult, reason=reason, detail=detail, status_code=status)

    if code in OPTED_OUT_CODES:
        return result(Outcome.OPTED_OUT)
    if code in DEAD_NUMBER_CODES:
        return result(Outcome.INVALID_RECIPIENT)
    if code in AUTH_CODES or status == 401:
        return result(Outcome.PROVIDER_AUTH)
    if code in RATE_CODES or status == 429:
        return result(Outcome.RATE_LIMITED, retry_after_s=retry_after)
    if status >= 500:
        return result(Outcome.RETRY, retry_after_s=retry_after)
    # 21408 (no geo permission), 21606 (From cannot send), 21608 (trial: unverified To), …
    return result(Outcome.PERMANENT)


SPEC = ProviderSpec(
    provider_type=ProviderType.TWILIO,
    channels=frozenset({Channel.SMS}),
    credentials_model=TwilioCredentials,
    secret_fields=frozenset({"authToken"}),
    factory=http_adapter(TwilioProvider),
)
