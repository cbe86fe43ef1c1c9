"""Channels, statuses and delivery results, and the mappings the API reports."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A delivery channel; the value is also the queue's routing key."""

    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    CHAT = "chat"
    IN_APP = "in_app"

    @property
    def api_name(self) -> str:
        """The seed-000 spelling (PUSH, IN_APP, …)."""
        return self.value.upper()

    @classmethod
    def from_api(cls, name: str) -> Channel:
        """Parse the seed-000 spelling."""
        return cls(name.lower())


class Category(StrEnum):
    """Seed-000 notification categories; SYSTEM bypasses preferences."""

    SYSTEM = "SYSTEM"
    TRANSACTIONAL = "TRANSACTIONAL"
    PRODUCT = "PRODUCT"
    PROMOTIONAL = "PROMOTIONAL"


class Status(StrEnum):
    """The record's lifecycle (DESIGN.md §6); it only moves forward."""

    SCHEDULED = "SCHEDULED"
    DELAYED = "DELAYED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    RETRYING = "RETRYING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    RATE_LIMITED = "RATE_LIMITED"
    OPTED_OUT = "OPTED_OUT"
    NO_CHANNEL = "NO_CHANNEL"
    INVALID_CREDENTIAL = "INVALID_CREDENTIAL"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """True once nothing more will happen to the record."""
        return self in FINAL_STATUSES

    @property
    def result(self) -> str:
        """The seed's delivery result: every in-flight state reads as SENT."""
        return self.value if self.is_final else "SENT"


FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.FAILED,
        Status.RATE_LIMITED,
        Status.OPTED_OUT,
        Status.NO_CHANNEL,
        Status.INVALID_CREDENTIAL,
        Status.CANCELLED,
    }
)


class ProviderType(StrEnum):
    """Providers a tenant can configure (seed 000), with the channel each serves."""

    FCM = "FCM"
    APNS = "APNS"
    SENDGRID = "SENDGRID"
    SES = "SES"
    TWILIO = "TWILIO"
    SLACK = "SLACK"
    DISCORD = "DISCORD"
    # Our extension: a Novu instance as a delivery route, for any channel it has a workflow for.
    NOVU = "NOVU"

    @property
    def channels(self) -> frozenset[Channel]:
        """Every channel this provider can deliver on."""
        return _PROVIDER_CHANNELS[self]

    @property
    def channel(self) -> Channel:
        """The one channel of a single-channel provider; ValueError for Novu (see `channels`)."""
        channels = _PROVIDER_CHANNELS[self]
        if len(channels) != 1:
            raise ValueError(f"{self.value} serves several channels")
        return next(iter(channels))


_PROVIDER_CHANNELS = {
    ProviderType.FCM: frozenset({Channel.PUSH}),
    ProviderType.APNS: frozenset({Channel.PUSH}),
    ProviderType.SENDGRID: frozenset({Channel.EMAIL}),
    ProviderType.SES: frozenset({Channel.EMAIL}),
    ProviderType.TWILIO: frozenset({Channel.SMS}),
    ProviderType.SLACK: frozenset({Channel.CHAT}),
    ProviderType.DISCORD: frozenset({Channel.CHAT}),
    ProviderType.NOVU: frozenset(Channel),
}


class Environment(StrEnum):
    """A tenant's two environments: edits happen in development and are promoted to production.

    Workflows, templates and provider configs live per environment; subscribers, topics,
    preferences and notifications belong to the tenant (a notification records which
    environment sent it).
    """

    DEVELOPMENT = "development"
    PRODUCTION = "production"
