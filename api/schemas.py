"""Request bodies: seed 003 in snake_case, seed 000's RPCs in camelCase, exactly as the seeds."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from api.chat_schemas import ChatAddresses
from api.preference_schemas import QuietHoursData
from api.timing_schemas import BulkTimingFields, ExpiryFields
from shared.domain import Channel, ProviderType
from shared.records import Content as RecordContent

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
ApiChannel = Literal["PUSH", "IN_APP", "EMAIL", "SMS", "CHAT"]
ApiCategory = Literal["SYSTEM", "TRANSACTIONAL", "PRODUCT", "PROMOTIONAL"]
FeedId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
# The enum itself, so a provider type added to the domain is accepted here too; strict=False
# because the models below are strict and a JSON body carries the value as a plain string.
ApiProviderType = Annotated[ProviderType, Field(strict=False)]


class Strict(BaseModel):
    """No coercion surprises: a string is not a number, a number is not a string."""

    model_config = ConfigDict(strict=True, extra="ignore")


# --- seed 003 -------------------------------------------------------------------------


class SendNotificationRequest(Strict):
    """`POST /api/v1/notifications`."""

    notification_type: Literal["email", "push"]
    user_id: str
    template_code: NonEmpty
    variables: dict[str, Any]
    request_id: NonEmpty
    priority: int = Field(default=1, ge=1, le=5)
    metadata: dict[str, Any] | None = None

    @field_validator("user_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        # The seed asks for "UUID v4" but its own example (…-12d3-…) is version 1 and must
        # be accepted, so any RFC 4122 UUID in canonical form passes.
        if not _UUID.match(value):
            raise ValueError("must be a valid UUID")
        return value.lower()


# --- seed 000: sending ---------------------------------------------------------------


class Content(Strict):
    """What a notification says (seed 000 `content`); `subject` is our e-mail extension."""

    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    subject: Annotated[str, StringConstraints(max_length=1000)] | None = None
    data: dict[str, Any] | None = None
    deepLink: Annotated[str, StringConstraints(max_length=2000)] | None = None
    imageUrl: Annotated[str, StringConstraints(max_length=2000)] | None = None
    # Our extension: the in-app feed the message lands in (`default` when not given).
    feedId: FeedId | None = None

    def to_record(self) -> RecordContent:
        """The stored form (snake_case)."""
        return RecordContent(
            title=self.title,
            body=self.body,
            subject=self.subject,
            data=self.data,
            deep_link=self.deepLink,
            image_url=self.imageUrl,
            feed_id=self.feedId,
        )


class _SendBody(Strict):
    """What every send RPC shares: channel, category, content, idempotency and priority."""

    channel: ApiChannel
    category: ApiCategory = "TRANSACTIONAL"
    content: Content
    idempotencyKey: NonEmpty | None = None
    priority: int = Field(default=1, ge=1, le=5)

    @model_validator(mode="after")
    def _email_needs_a_subject(self) -> Self:
        if self.channel == "EMAIL" and not (self.content.subject or self.content.title):
            raise ValueError("content.subject or content.title is required for EMAIL")
        return self

    @property
    def channel_enum(self) -> Channel:
        """The internal channel."""
        return Channel.from_api(self.channel)


class _OneUser(Strict):
    userId: NonEmpty


class _SomeUsers(Strict):
    # A ceiling for the schema; NOTIFY_BULK_MAX_RECIPIENTS (lower) is checked in the route.
    userIds: list[NonEmpty] = Field(min_length=1, max_length=10_000)


# The recipient base comes last so its field comes first (pydantic orders fields from the
# last base to the first): errors then list the fields in the seed's body order.
class SendRequest(_SendBody, ExpiryFields, _OneUser):
    """`manage/send` (plus our `expiresAt` / `ttlSeconds`)."""


class SendBulkRequest(_SendBody, BulkTimingFields, ExpiryFields, _SomeUsers):
    """`manage/send-bulk`: up to 100 recipients (the limit is checked against settings), now or
    after a delay or at a scheduled time, with an optional expiry."""


class TransactionRequest(Strict):
    """`manage/get-delivery-status`."""

    transactionId: NonEmpty


# --- seed 000: subscribers -------------------------------------------------------------


class SubscriberData(Strict):
    """Profile fields of a subscriber."""

    firstName: Annotated[str, StringConstraints(max_length=200)] | None = None
    lastName: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: EmailStr | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    avatar: Annotated[str, StringConstraints(max_length=2000)] | None = None
    data: dict[str, Any] | None = None
    chat: ChatAddresses | None = None  # our extension: Slack / Discord addresses
    # Our extension: PUSH / EMAIL / SMS wait until the window ends (null removes it).
    quietHours: QuietHoursData | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _E164.match(value):
            raise ValueError("must be an E.164 phone number such as +14155550100")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not _LOCALE.match(value):
            raise ValueError("must be a locale tag such as en-US")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError("must be an IANA time zone such as America/New_York") from None
        return value


class CreateSubscriberRequest(Strict):
    """`manage/create-subscriber`."""

    userId: NonEmpty
    subscriberData: SubscriberData = Field(default_factory=SubscriberData)


class UpdateSubscriberRequest(Strict):
    """`manage/update-subscriber-data`."""

    userId: NonEmpty
    subscriberData: SubscriberData


class UserIdRequest(Strict):
    """`manage/get-subscriber`, `manage/delete-subscriber`."""

    userId: NonEmpty


class PageRequest(Strict):
    """Paged lists."""

    page: int = Field(default=1, ge=1, le=100_000)
    pageSize: int = Field(default=50, ge=1, le=500)


# --- seed 000: devices (user RPCs) -----------------------------------------------------


PushToken = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{16,200}$")


class _OneToken(Strict):
    """`fcmToken` (seed 000), or `apnsToken` for a device that talks to APNs directly."""

    fcmToken: PushToken | None = None
    apnsToken: PushToken | None = None

    @field_validator("apnsToken")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _APNS_TOKEN.match(value):
            raise ValueError("must be the hexadecimal device token APNs issued")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.fcmToken is None) == (self.apnsToken is None):
            raise ValueError("exactly one of fcmToken and apnsToken is required")
        return self

    @property
    def token(self) -> str:
        """The token given."""
        token = self.fcmToken if self.fcmToken is not None else self.apnsToken
        assert token is not None
        return token

    @property
    def provider(self) -> str:
        """The provider type the token belongs to."""
        return "FCM" if self.fcmToken is not None else "APNS"


class RegisterDeviceRequest(_OneToken):
    """`register-push-device`."""

    platform: Literal["IOS", "ANDROID", "WEB"]
    deviceId: NonEmpty


class UnregisterDeviceRequest(_OneToken):
    """`unregister-push-device`."""


class EmptyRequest(Strict):
    """RPCs whose body is `{}`."""


# --- seed 000: providers -----------------------------------------------------------------


class ConfigureProviderRequest(Strict):
    """`manage/configure-provider`; `providerId`, `endpoint` and `priority` are our extensions.

    `providerId` names one configuration (default: the provider type), so a channel can have
    several, e.g. two SendGrid accounts; the lowest `priority` is used first and the others
    take over while its circuit is open.
    """

    providerType: ApiProviderType
    providerId: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
        ]
        | None
    ) = None
    credentials: dict[str, Any]
    active: bool = True
    endpoint: (
        Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None
    ) = None
    priority: int = Field(default=0, ge=0, le=100)


class GetProvidersRequest(Strict):
    """`manage/get-providers`: active configs only unless `includeInactive` (our extension)."""

    includeInactive: bool = False


# --- templates (our extension, camelCase like seed 000) ----------------------------------


class CreateTemplateRequest(Strict):
    """`manage/create-template`: every call adds a version."""

    templateCode: Annotated[
        str,
        StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    ]
    channel: ApiChannel
    subject: Annotated[str, StringConstraints(max_length=2000)] | None = None
    title: Annotated[str, StringConstraints(max_length=2000)] | None = None
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    locale: str | None = None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not _LOCALE.match(value):
            raise ValueError("must be a locale tag such as en-US")
        return value


class GetTemplateRequest(Strict):
    """`manage/get-template`."""

    templateCode: NonEmpty
    version: int | None = Field(default=None, ge=1)
