"""Request bodies of the outbound-webhook RPCs (our extension, camelCase like seed 000)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from api.schemas import Strict

EventType = Literal[
    "notification.delivered",
    "notification.failed",
    "notification.opted_out",
    "notification.bounced",
    "inbox.read",
]
WebhookId = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class CreateWebhookRequest(Strict):
    """`manage/create-webhook`: where to post, which events, and a note for humans."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=20)]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookIdRequest(Strict):
    """`manage/delete-webhook`, `manage/rotate-webhook-secret`."""

    webhookId: WebhookId


class ListWebhookDeliveriesRequest(Strict):
    """`manage/list-webhook-deliveries`: newest first."""

    webhookId: WebhookId
    page: int = Field(default=1, ge=1, le=100_000)
    pageSize: int = Field(default=20, ge=1, le=100)
