"""Turn stored documents into the seeds' response shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.db.base import Doc
from shared.domain import Channel
from shared.providers.registry import mask_credentials
from shared.providers.spec import MASK
from shared.records import Attempt, NotificationRecord
from shared.timefmt import iso_z as iso


def attempt_view(attempt: Attempt, *, camel: bool) -> dict[str, Any]:
    """One delivery attempt."""
    view: dict[str, Any] = {
        "attempt": attempt.n,
        "at": iso(attempt.at),
        "provider": attempt.provider,
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "detail": attempt.detail,
    }
    view["durationMs" if camel else "duration_ms"] = attempt.duration_ms
    return view


def notification_view(record: NotificationRecord) -> dict[str, Any]:
    """`GET /api/v1/notifications/{id}`, snake_case like seed 003.

    A seed-003 notification is named by its `request_id`, as the seed's answer names it;
    `internal_id` is the id the other RPCs and the dead-letter tools use.
    """
    status = record.status
    return {
        "notification_id": record.request_id or record.id,
        "internal_id": record.id,
        "status": status.value.lower(),
        "result": status.result,
        "channel": record.channel.value,
        "user_id": record.recipient,
        "priority": record.priority,
        "template_code": record.template.code if record.template else None,
        "provider": record.provider,
        "provider_message_id": record.provider_message_id,
        "failure_reason": record.failure_reason,
        "failure_detail": record.failure_detail,
        "attempts": [attempt_view(a, camel=False) for a in record.attempts],
        "created_at": iso(record.created_at),
        "queued_at": iso(record.queued_at),
        "delivered_at": iso(record.delivered_at),
        "confirmed_at": iso(record.confirmed_at),
        "updated_at": iso(record.updated_at),
    }


def _result_of(records: list[NotificationRecord]) -> str:
    statuses = [r.status for r in records]
    if any(not s.is_final for s in statuses):
        return "SENT"
    results = {s.result for s in statuses}
    if len(results) == 1:
        return results.pop()
    # Mixed outcomes: the per-recipient list tells which; the summary must not claim success.
    return "FAILED"


def delivery_status_view(records: list[NotificationRecord]) -> dict[str, Any]:
    """`manage/get-delivery-status`: the seed's shape; a bulk adds per-recipient rows."""
    first = records[0]
    view: dict[str, Any] = {
        "transactionId": first.transaction_id,
        "channel": first.channel.api_name,
        "result": _result_of(records),
        "providerMessageId": first.provider_message_id if len(records) == 1 else None,
        "queuedAt": iso(first.queued_at),
        "deliveredAt": iso(max((r.delivered_at for r in records if r.delivered_at), default=None)),
        # When a delayed / scheduled / deferred record is (or was) due; None: sent at once.
        "scheduledFor": iso(min((r.deliver_at for r in records if r.deliver_at), default=None)),
    }
    if len(records) == 1:
        view["expiresAt"] = iso(first.expires_at)
        view["failureReason"] = first.failure_reason
        view["confirmedAt"] = iso(first.confirmed_at)  # a provider receipt saw it arrive
        view["attempts"] = [attempt_view(a, camel=True) for a in first.attempts]
    else:
        counts: dict[str, int] = {}
        for r in records:
            counts[r.status.result] = counts.get(r.status.result, 0) + 1
        view["summary"] = counts
        view["recipients"] = [
            {
                "userId": r.recipient,
                "notificationId": r.id,
                "result": r.status.result,
                "providerMessageId": r.provider_message_id,
                "failureReason": r.failure_reason,
                "deliveredAt": iso(r.delivered_at),
                "scheduledFor": iso(r.deliver_at),
            }
            for r in records
        ]
    return view


def subscriber_view(doc: Doc) -> dict[str, Any]:
    """A subscriber in camelCase; push tokens are never echoed whole."""
    return {
        "userId": doc["subscriber_id"],
        "firstName": doc.get("first_name"),
        "lastName": doc.get("last_name"),
        "email": doc.get("email"),
        "phone": doc.get("phone"),
        "locale": doc.get("locale"),
        "timezone": doc.get("timezone"),
        "avatar": doc.get("avatar"),
        "data": doc.get("data"),
        "devices": [
            {
                "deviceId": d.get("device_id"),
                "platform": d.get("platform"),
                "provider": d.get("provider") or "FCM",
                "tokenSuffix": d["token"][-6:],
                "registeredAt": iso(d.get("registered_at")),
            }
            for d in doc.get("devices", [])
        ],
        "chat": chat_view(doc.get("chat") or {}),
        "quietHours": doc.get("quiet_hours") or None,
        "suppressed": [
            {
                "channel": Channel(m["channel"]).api_name,
                "address": m.get("address"),
                "reason": m.get("reason"),
            }
            for m in doc.get("suppressed") or []
            if isinstance(m, dict) and m.get("channel") in ("email", "sms")
        ],
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def mask_webhook(url: str) -> str:
    """A webhook URL without its secret path: scheme, host and the last 4 characters."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…{url[-4:]}"


def chat_view(chat: Mapping[str, Any]) -> dict[str, Any]:
    """A subscriber's chat addresses; webhook URLs (which carry their token) masked."""
    slack_hook, discord_hook = chat.get("slack_webhook_url"), chat.get("discord_webhook_url")
    return {
        "slackWebhookUrl": mask_webhook(slack_hook) if slack_hook else None,
        "slackChannelId": chat.get("slack_channel_id") or None,
        "discordWebhookUrl": mask_webhook(discord_hook) if discord_hook else None,
    }


def suppression_view(doc: Doc) -> dict[str, Any]:
    """One entry of the suppression list."""
    return {
        "channel": Channel(doc["channel"]).api_name,
        "address": doc["address"],
        "reason": doc.get("reason"),
        "source": doc.get("source"),
        "detail": doc.get("detail"),
        "notificationId": doc.get("notification_id"),
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def provider_view(doc: Doc, *, credentials: Mapping[str, Any] | None) -> dict[str, Any]:
    """A provider config; secret credentials masked as its spec says (all masked when unknown)."""
    fields = sorted(doc.get("credential_fields", []))
    shown = (
        dict.fromkeys(fields, MASK)
        if credentials is None
        else mask_credentials(provider_type=str(doc["provider_type"]), credentials=credentials)
    )
    stored = doc["channel"]
    channels = [Channel(c).api_name for c in (stored if isinstance(stored, list) else [stored])]
    return {
        "providerId": doc.get("provider_id") or doc["provider_type"],
        "providerType": doc["provider_type"],
        "channel": channels[0],
        "channels": channels,
        "active": doc.get("active", False),
        "priority": doc.get("priority", 0),
        "endpoint": doc.get("endpoint"),
        "environment": doc.get("environment") or "development",
        "credentialsConfigured": bool(doc.get("credentials_enc")),
        "credentialFields": fields,
        "credentials": shown,
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def template_view(doc: Doc) -> dict[str, Any]:
    """A template version."""
    return {
        "templateCode": doc["template_code"],
        "version": doc["version"],
        "channel": Channel(doc["channel"]).api_name,
        "subject": doc.get("subject"),
        "title": doc.get("title"),
        "body": doc.get("body"),
        "locale": doc.get("locale"),
        "environment": doc.get("environment"),
        "createdAt": iso(doc.get("created_at")),
    }
