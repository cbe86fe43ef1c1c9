"""Amazon SES adapter: SES v2 `SendEmail` through aiobotocore (botocore signs, aiohttp sends).

botocore's own retries are switched off (`total_max_attempts: 1`): by default it retries 429s
and 5xx four times with sleeps (9 to 13 s, DESIGN.md §8), which our delay queues already do
without holding a worker. The client is built on first use, inside the worker's running loop.
"""

from __future__ import annotations

import asyncio
import re
from email.utils import formataddr
from functools import partial
from typing import Any

import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from pydantic import Field, field_validator

from shared.domain import Channel, ProviderType
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome, ProviderConfig
from shared.providers.spec import AdapterResources, CredentialModel, ProviderSpec, RequiredText

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

RATE_CODES = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "RequestThrottled"}
)
# The account (or config set) may not send: an operator acts; the circuit moves traffic meanwhile.
PAUSED_CODES = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "AccountSendingPausedException",
        "ConfigurationSetSendingPausedException",
    }
)
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
        "AccessDenied",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
RETRY_CODES = frozenset({"InternalFailure", "ServiceUnavailable", "InternalServerError"})


class SesCredentials(CredentialModel):
    """`{accessKeyId, secretAccessKey, region, fromEmail, fromName?, configurationSet?}`."""

    access_key_id: RequiredText = Field(alias="accessKeyId")
    secret_access_key: RequiredText = Field(alias="secretAccessKey", repr=False)
    region: RequiredText
    from_email: RequiredText = Field(alias="fromEmail")
    from_name: str | None = Field(default=None, alias="fromName")
    configuration_set: str | None = Field(default=None, alias="configurationSet")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("must be an AWS region such as us-east-1")
        return value

    @field_validator("from_email")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an e-mail address")
        return value


def build_send_email(message: OutboundMessage, *, credentials: SesCredentials) -> dict[str, Any]:
    """The keyword arguments of SES v2 `send_email` for one message."""
    c = credentials
    sender = formataddr((c.from_name, c.from_email)) if c.from_name else c.from_email
    body: dict[str, Any] = {"Text": {"Data": message.body, "Charset": "UTF-8"}}
    if message.html:
        body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
    subject = message.subject or message.title or ""
    kwargs: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": [message.to]},
        "Content": {"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": body}},
        # Event destinations (bounces, deliveries) echo the tags: how a receipt finds its record.
        "EmailTags": [
            {"Name": "notification_id", "Value": _TAG_UNSAFE.sub("_", message.notification_id)},
            {"Name": "tenant_id", "Value": _TAG_UNSAFE.sub("_", message.tenant_id)},
        ],
    }
    if c.configuration_set:
        kwargs["ConfigurationSetName"] = c.configuration_set
    return kwargs


class SesProvider:
    """Delivers email through Amazon SES v2."""

    name = "SES"

    def __init__(
        self, *, credentials: SesCredentials, endpoint: str | None, timeout_s: float
    ) -> None:
        self._credentials = credentials
        self._endpoint = endpoint
        self._timeout_s = timeout_s
        self._client: Any = None
        self._context: Any = None
        self._lock = asyncio.Lock()

    async def _ses(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                c = self._credentials
                config = AioConfig(
                    connect_timeout=self._timeout_s,
                    read_timeout=self._timeout_s,
                    retries={"total_max_attempts": 1},  # ours retry; botocore's would sleep
                    max_pool_connections=32,
                )
                self._context = get_session().create_client(
                    "sesv2",
                    region_name=c.region,
                    endpoint_url=self._endpoint,
                    aws_access_key_id=c.access_key_id,
                    aws_secret_access_key=c.secret_access_key,
                    config=config,
                )
                self._client = await self._context.__aenter__()
        return self._client

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send one mail; never raises for provider or transport failures."""
        kwargs = build_send_email(message, credentials=self._credentials)
        try:
            client = await self._ses()
            # connect/read timeouts bound each phase; this bounds the whole call.
            async with asyncio.timeout(self._timeout_s * 2):
                answer = await client.send_email(**kwargs)
        except botocore.exceptions.ClientError as exc:
            return classify_client_error(exc.response)
        except TimeoutError:
            return DeliveryResult(
                outcome=Outcome.RETRY, reason="timeout", detail="SES call timed out"
            )
        except (botocore.exceptions.BotoCoreError, aiohttp.ClientError, OSError) as exc:
            return classify_transport_error(exc)
        message_id = answer.get("MessageId")
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
        return DeliveryResult(
            outcome=Outcome.DELIVERED,
            provider_message_id=message_id if isinstance(message_id, str) else None,
            status_code=int(status),
        )

    async def aclose(self) -> None:
        """Close the aiobotocore client and its connection pool."""
        context, self._context, self._client = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)


def classify_transport_error(exc: BaseException) -> DeliveryResult:
    """No usable SES answer: a timeout, a refused or broken connection. Always RETRY."""
    if isinstance(
        exc, botocore.exceptions.ReadTimeoutError | botocore.exceptions.ConnectTimeoutError
    ):
        reason = "timeout"
    elif isinstance(exc, botocore.exceptions.EndpointConnectionError):
        reason = "connection_error"
    else:
        reason = "network_error"
    return DeliveryResult(
        outcome=Outcome.RETRY, reason=reason, detail=f"{type(exc).__name__}: {exc}"
    )


def classify_client_error(response: dict[str, Any]) -> DeliveryResult:
    """Classify an SES error answer from botocore's parsed `ClientError.response`."""
    error = response.get("Error", {})
    meta = response.get("ResponseMetadata", {})
    code = str(error.get("Code") or "")
    text = str(error.get("Message") or "")
    status = int(meta.get("HTTPStatusCode") or 0) or None
    reason = code or f"HTTP_{status}"
    detail = f"{code}: {text}" if text else code

    result = partial(DeliveryResult, reason=reason, detail=detail, status_code=status)

    if code in RATE_CODES or status == 429:
        return result(Outcome.RATE_LIMITED)  # SES sends no delay; the channel's backoff applies
    if code in PAUSED_CODES or code in AUTH_CODES or status == 403:
        return result(Outcome.PROVIDER_AUTH)
    if code in RETRY_CODES or (status is not None and status >= 500):
        return result(Outcome.RETRY)
    if code == "BadRequestException" and "address" in text.lower():
        # "Illegal address", "Missing final '@domain'": this recipient can never be mailed.
        return result(Outcome.INVALID_RECIPIENT)
    # MessageRejected, MailFromDomainNotVerifiedException, NotFoundException, …
    return result(Outcome.PERMANENT)


def _build(
    *, config: ProviderConfig, credentials: SesCredentials, resources: AdapterResources
) -> SesProvider:
    return SesProvider(
        credentials=credentials, endpoint=config.endpoint, timeout_s=resources.timeout_s
    )


SPEC = ProviderSpec(
    provider_type=ProviderType.SES,
    channels=frozenset({Channel.EMAIL}),
    credentials_model=SesCredentials,
    secret_fields=frozenset({"secretAccessKey"}),
    factory=_build,
)
