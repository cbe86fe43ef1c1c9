"""The one adapter contract every provider implements, and the classified outcome it returns.

Provider and transport exceptions are classified inside each adapter's `send` and nowhere
else: `send` never raises for a provider answer, a timeout or a refused connection; it returns
a `DeliveryResult` whose `outcome` says what the worker must do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from shared.domain import Channel


class Outcome(StrEnum):
    """What happened to one send, already classified."""

    DELIVERED = "delivered"
    RETRY = "retry"  # transient: 5xx, timeout, connection error
    RATE_LIMITED = "rate_limited"  # 429 / quota: retry no sooner than retry_after_s
    INVALID_RECIPIENT = "invalid_recipient"  # dead token / address: drop it
    OPTED_OUT = "opted_out"  # the recipient told the provider to stop (SMS STOP)
    PERMANENT = "permanent"  # the provider refused this message for good
    PROVIDER_AUTH = "provider_auth"  # our own credentials were refused


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The classified answer of one provider call."""

    outcome: Outcome
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    reason: str | None = None  # short machine-readable cause, e.g. "UNREGISTERED"
    detail: str | None = None  # the provider's own words, for operators
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one address on one channel."""

    notification_id: str
    tenant_id: str
    channel: Channel
    to: str  # email address, device token, phone number or webhook
    body: str
    subject: str | None = None
    title: str | None = None
    html: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    deep_link: str | None = None
    image_url: str | None = None
    priority: int = 1
    recipient_id: str | None = None
    category: str | None = None
    feed_id: str | None = None  # in-app only: the feed the inbox item lands in
    # The subscriber document as stored, for routes that take the whole subscriber (Novu).
    subscriber: Mapping[str, Any] | None = None
    # The notification's transaction: sibling records of a bulk send share it.
    transaction_id: str | None = None
    # One of many recipients of one request (a send-bulk, a topic fan-out): its siblings are
    # a few milliseconds behind, and an adapter that batches may wait for them.
    in_bulk: bool = False


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A tenant's provider configuration, credentials already decrypted."""

    tenant_id: str
    provider_type: str  # ProviderType value, or "SANDBOX"
    credentials: dict[str, Any]
    endpoint: str | None = None
    version: str = ""  # changes whenever the stored config changes (cache key)


class Provider(Protocol):
    """A delivery adapter: one instance per (tenant, provider config)."""

    name: str

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message; never raises for provider or transport failures."""
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds (the shared HTTP client is not its to close)."""
        ...
