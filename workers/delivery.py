"""One message's fate: claim the record, resolve, render, send, record, then say ack or requeue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.domain import Channel, Status
from shared.errors import ValidationFailed
from shared.messaging.broker import Broker
from shared.messaging.messages import deliver_message_for
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.rendering import TEMPLATE_FIELDS, render_fields
from workers.providers import ProviderResolver, ResolvedProvider

log = structlog.get_logger(__name__)


class Disposition(StrEnum):
    """What the consumer does with the message once the handler is done."""

    ACK = "ack"  # outcome recorded (or nothing to do): remove it from the queue
    REQUEUE = "requeue"  # nothing recorded: let the broker deliver it again


@dataclass(frozen=True, slots=True)
class _Target:
    address: str
    label: str


# When several addresses answered differently, the record takes the first of these present.
_PRECEDENCE = (
    Outcome.DELIVERED,
    Outcome.PROVIDER_AUTH,
    Outcome.RATE_LIMITED,
    Outcome.RETRY,
    Outcome.PERMANENT,
    Outcome.INVALID_RECIPIENT,
)

_STATUS_OF = {
    Outcome.DELIVERED: Status.DELIVERED,
    Outcome.PROVIDER_AUTH: Status.FAILED,
    Outcome.RATE_LIMITED: Status.RATE_LIMITED,
    # Retries through the delay infrastructure come with the reliability work; until then a
    # transient failure ends FAILED with its reason, never silently dropped.
    Outcome.RETRY: Status.FAILED,
    Outcome.PERMANENT: Status.FAILED,
    Outcome.INVALID_RECIPIENT: Status.INVALID_CREDENTIAL,
}


class DeliveryHandler:
    """Handles `deliver` messages for one channel; idempotent on the notification id."""

    def __init__(
        self,
        *,
        db: Database,
        broker: Broker,
        resolver: ProviderResolver,
        channel: Channel,
        worker_id: str,
        lease_s: int,
    ) -> None:
        self._db = db
        self._broker = broker
        self._resolver = resolver
        self._channel = channel
        self._worker_id = worker_id
        self._lease_s = lease_s

    async def handle(self, body: dict[str, Any]) -> Disposition:
        """Deliver the notification named in `body`; never raises for a provider failure."""
        notification_id = body.get("notification_id")
        tenant_id = body.get("tenant_id")
        if not isinstance(notification_id, str) or not isinstance(tenant_id, str):
            log.error("message_malformed", body=str(body)[:200])
            return Disposition.ACK
        repo = self._db.notifications
        doc = await repo.claim_and_get(
            tenant_id=tenant_id,
            notification_id=notification_id,
            worker=self._worker_id,
            lease_s=self._lease_s,
        )
        if doc is None:
            return await self._not_claimed(tenant_id=tenant_id, notification_id=notification_id)
        try:
            status, attempt, fields = await self._deliver(doc)
        except Exception:
            # Nothing recorded: hand the record back and let the broker redeliver.
            log.exception("delivery_crashed")
            await repo.release(
                tenant_id=tenant_id, notification_id=notification_id, worker=self._worker_id
            )
            return Disposition.REQUEUE
        attempt["n"] = len(doc.get("attempts", [])) + 1
        finished = await repo.finish(
            tenant_id=tenant_id,
            notification_id=notification_id,
            worker=self._worker_id,
            status=status,
            attempt=attempt,
            fields=fields,
        )
        if finished:
            log.info(
                f"notification_{status.value.lower()}",
                provider=attempt.get("provider"),
                reason=fields.get("failure_reason"),
                duration_ms=attempt.get("duration_ms"),
            )
        else:
            log.warning("claim_lost_before_finish", status=status.value)
        return Disposition.ACK

    async def _not_claimed(self, *, tenant_id: str, notification_id: str) -> Disposition:
        doc = await self._db.notifications.get(tenant_id=tenant_id, notification_id=notification_id)
        if doc is None:
            log.warning("notification_missing")
            return Disposition.ACK
        lease = doc.get("lease_until")
        if doc["status"] == Status.PROCESSING.value and isinstance(lease, datetime):
            # Another worker holds a live lease (it may have died): look again once it expires.
            wait_s = max(1, int((lease - datetime.now(UTC)).total_seconds()) + 1)
            await self._broker.publish_notification(
                channel=self._channel,
                body=deliver_message_for(doc),
                priority=int(doc.get("priority", 1)),
                correlation_id=doc.get("correlation_id"),
                delay_s=wait_s,
            )
            log.info("notification_lease_held", retry_in_s=wait_s)
            return Disposition.ACK
        log.info("notification_skipped", status=doc["status"])
        return Disposition.ACK

    async def _deliver(self, doc: Doc) -> tuple[Status, dict[str, Any], dict[str, Any]]:
        started = time.perf_counter()
        attempt: dict[str, Any] = {"at": utcnow(), "worker": self._worker_id}
        tenant_id = doc["tenant_id"]

        def done(
            status: Status, reason: str | None, detail: str | None = None, **extra: Any
        ) -> tuple[Status, dict[str, Any], dict[str, Any]]:
            attempt.update(
                outcome=status.value,
                reason=reason,
                detail=detail,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            fields = {"failure_reason": reason, "failure_detail": detail, **extra}
            return status, attempt, fields

        subscriber = await self._db.subscribers.get(
            tenant_id=tenant_id, subscriber_id=doc["recipient"]
        )
        if subscriber is None:
            return done(Status.NO_CHANNEL, "subscriber_not_found")
        targets = _targets(self._channel, subscriber)
        if not targets:
            return done(Status.NO_CHANNEL, f"no_{self._channel.value}_address")
        providers = await self._resolver.for_channel(tenant_id=tenant_id, channel=self._channel)
        if not providers:
            return done(Status.NO_CHANNEL, "no_provider")
        try:
            content = await self._content(doc, subscriber)
        except ValidationFailed as exc:
            return done(Status.FAILED, "render_error", "; ".join(exc.details))

        provider = providers[0]
        attempt["provider"] = provider.name
        sending = time.perf_counter()
        results = [await self._send_one(provider, doc, content, t) for t in targets]
        # Kept apart from duration_ms so the provider's share of an attempt is visible.
        attempt["provider_ms"] = round((time.perf_counter() - sending) * 1000, 2)
        for target, result in zip(targets, results, strict=True):
            if result.outcome is Outcome.INVALID_RECIPIENT and self._channel is Channel.PUSH:
                await self._db.subscribers.remove_token(
                    tenant_id=tenant_id, token=target.address, subscriber_id=doc["recipient"]
                )
                log.info(
                    "device_token_removed", reason=result.reason, token_suffix=target.address[-6:]
                )

        best = min(results, key=lambda r: _PRECEDENCE.index(r.outcome))
        status = _STATUS_OF[best.outcome]
        reason = (
            None
            if best.outcome is Outcome.DELIVERED
            else (
                "provider_auth"
                if best.outcome is Outcome.PROVIDER_AUTH
                else (best.reason or best.outcome.value)
            )
        )
        extra: dict[str, Any] = {"provider": provider.name}
        if best.provider_message_id:
            extra["provider_message_id"] = best.provider_message_id
        if best.retry_after_s is not None:
            extra["retry_after_s"] = best.retry_after_s
        if len(results) > 1:
            attempt["targets"] = [
                {"to": t.label, "outcome": r.outcome.value, "reason": r.reason}
                for t, r in zip(targets, results, strict=True)
            ]
        detail = None if best.outcome is Outcome.DELIVERED else best.detail
        return done(status, reason, detail, **extra)

    async def _send_one(
        self, provider: ResolvedProvider, doc: Doc, content: dict[str, Any], target: _Target
    ) -> DeliveryResult:
        data = {str(k): str(v) for k, v in (content.get("data") or {}).items()}
        message = OutboundMessage(
            notification_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            channel=self._channel,
            to=target.address,
            body=content.get("body") or "",
            subject=content.get("subject"),
            title=content.get("title"),
            data=data,
            deep_link=content.get("deep_link"),
            image_url=content.get("image_url"),
            priority=int(doc.get("priority", 1)),
            recipient_id=doc["recipient"],
            category=doc.get("category"),
        )
        return await provider.adapter.send(message)

    async def _content(self, doc: Doc, subscriber: Doc) -> dict[str, Any]:
        template_ref = doc.get("template")
        if not template_ref:
            content = dict(doc.get("content") or {})
            if self._channel is Channel.EMAIL and not content.get("subject"):
                content["subject"] = content.get("title")
            return content
        template = await self._db.templates.get(
            tenant_id=doc["tenant_id"],
            template_code=template_ref["code"],
            version=template_ref["version"],
        )
        if template is None:
            raise ValidationFailed(
                [f"template {template_ref['code']} v{template_ref['version']} is gone"]
            )
        rendered = render_fields(
            {f: template.get(f) for f in TEMPLATE_FIELDS},
            doc.get("variables") or {},
            template_code=template_ref["code"],
        )
        if self._channel is Channel.EMAIL and not rendered.get("subject"):
            rendered["subject"] = rendered.get("title")
        metadata = doc.get("metadata") or {}
        return {
            **rendered,
            "data": {k: v for k, v in metadata.items() if isinstance(v, str | int | float)},
        }


def _targets(channel: Channel, subscriber: Doc) -> list[_Target]:
    """The subscriber's addresses on a channel."""
    if channel is Channel.EMAIL:
        email = subscriber.get("email")
        return [_Target(email, email)] if email else []
    if channel is Channel.PUSH:
        return [
            _Target(d["token"], f"device:{d.get('device_id')}")
            for d in subscriber.get("devices", [])
        ]
    if channel is Channel.SMS:
        phone = subscriber.get("phone")
        return [_Target(phone, phone)] if phone else []
    if channel is Channel.CHAT:
        return [_Target(w, "webhook") for w in subscriber.get("chat_webhooks", [])]
    return [_Target(subscriber["subscriber_id"], "inbox")]
