"""What is sent and where: a subscriber's addresses on a channel, and the rendered content."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.db.subscribers import CHAT_FIELDS
from shared.db.templates import TemplatesRepo
from shared.domain import Channel
from shared.errors import ValidationFailed
from shared.records import NotificationRecord
from shared.rendering import TEMPLATE_FIELDS, render_fields


@dataclass(frozen=True, slots=True)
class Target:
    """One address: a device token, an e-mail address, a phone number, a webhook, an inbox."""

    address: str
    label: str  # how an attempt names it without repeating a secret token
    # The provider type the address belongs to (an APNs token, a Discord webhook); None: any
    # provider of the channel can take it (an e-mail address, a phone number).
    provider_type: str | None = None


def targets_for(channel: Channel, subscriber: dict[str, Any]) -> list[Target]:
    """The subscriber's addresses on a channel, each with the provider type it needs."""
    if channel is Channel.EMAIL:
        email = subscriber.get("email")
        return [Target(email, email)] if email else []
    if channel is Channel.PUSH:
        return [
            # Devices registered before APNs existed carry no provider: they are FCM's.
            Target(d["token"], f"device:{d.get('device_id')}", d.get("provider") or "FCM")
            for d in subscriber.get("devices", [])
        ]
    if channel is Channel.SMS:
        phone = subscriber.get("phone")
        return [Target(phone, phone)] if phone else []
    if channel is Channel.CHAT:
        chat = subscriber.get("chat") or {}
        # The label is the field, so a dead address can be unset without naming it.
        return [
            Target(chat[field], field, provider_type)
            for field, provider_type in CHAT_FIELDS.items()
            if isinstance(chat.get(field), str) and chat[field]
        ]
    return [Target(subscriber["subscriber_id"], "inbox")]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The content of one notification, ready for an adapter."""

    body: str
    title: str | None = None
    subject: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    deep_link: str | None = None
    image_url: str | None = None
    feed_id: str | None = None


class ContentRenderer:
    """Renders a record's content: its own, or its template version with its variables."""

    def __init__(self, *, templates: TemplatesRepo, channel: Channel) -> None:
        self._templates = templates
        self._channel = channel

    async def render(self, record: NotificationRecord) -> Rendered:
        """The content to send; ValidationFailed when the template is gone or will not render."""
        if record.template is None:
            content = record.content
            if content is None:
                return Rendered(body="")
            return self._finish(
                title=content.title,
                subject=content.subject,
                body=content.body,
                data=content.data or {},
                deep_link=content.deep_link,
                image_url=content.image_url,
                feed_id=content.feed_id,
            )
        ref = record.template
        template = await self._templates.get(
            tenant_id=record.tenant_id,
            environment=ref.environment,
            template_code=ref.code,
            version=ref.version,
        )
        if template is None:
            raise ValidationFailed([f"template {ref.code} v{ref.version} is gone"])
        rendered = render_fields(
            {f: template.get(f) for f in TEMPLATE_FIELDS},
            record.variables or {},
            template_code=ref.code,
        )
        metadata = record.metadata or {}
        return self._finish(
            title=rendered.get("title"),
            subject=rendered.get("subject"),
            body=rendered.get("body") or "",
            data={k: v for k, v in metadata.items() if isinstance(v, str | int | float)},
        )

    def _finish(
        self,
        *,
        title: str | None,
        subject: str | None,
        body: str,
        data: dict[str, Any],
        deep_link: str | None = None,
        image_url: str | None = None,
        feed_id: str | None = None,
    ) -> Rendered:
        if self._channel is Channel.EMAIL and not subject:
            subject = title  # an e-mail needs a subject; the title serves
        return Rendered(
            body=body,
            title=title,
            subject=subject,
            data={str(k): str(v) for k, v in data.items()},
            deep_link=deep_link,
            image_url=image_url,
            feed_id=feed_id,
        )
