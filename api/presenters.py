"""Turn stored documents into the seeds' response shapes."""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.domain import Channel, Status
from shared.timefmt import iso_z as iso


def attempt_view(attempt: Doc, *, camel: bool) -> dict[str, Any]:
    """One delivery attempt."""
    view = {
        "attempt": attempt.get("n"),
        "at": iso(attempt.get("at")),
        "provider": attempt.get("provider"),
        "outcome": attempt.get("outcome"),
        "reason": attempt.get("reason"),
        "detail": attempt.get("detail"),
    }
    if camel:
        view["durationMs"] = attempt.get("duration_ms")
    else:
        view["duration_ms"] = attempt.get("duration_ms")
    return view


def notification_view(doc: Doc) -> dict[str, Any]:
    """`GET /api/v1/notifications/{id}`, snake_case like seed 003."""
    status = Status(doc["status"])
    return {
        "notification_id": doc["_id"],
        "status": status.value.lower(),
        "result": status.result,
        "channel": doc["channel"],
        "user_id": doc["recipient"],
        "priority": doc["priority"],
        "template_code": (doc.get("template") or {}).get("code"),
        "provider": doc.get("provider"),
        "provider_message_id": doc.get("provider_message_id"),
        "failure_reason": doc.get("failure_reason"),
        "failure_detail": doc.get("failure_detail"),
        "attempts": [attempt_view(a, camel=False) for a in doc.get("attempts", [])],
        "created_at": iso(doc.get("created_at")),
        "queued_at": iso(doc.get("queued_at")),
        "delivered_at": iso(doc.get("delivered_at")),
        "updated_at": iso(doc.get("updated_at")),
    }


def _result_of(docs: list[Doc]) -> str:
    statuses = [Status(d["status"]) for d in docs]
    if any(not s.is_final for s in statuses):
        return "SENT"
    results = {s.result for s in statuses}
    if len(results) == 1:
        return results.pop()
    # Mixed outcomes: the per-recipient list tells which; the summary must not claim success.
    return "FAILED"


def delivery_status_view(docs: list[Doc]) -> dict[str, Any]:
    """`manage/get-delivery-status`: the seed's shape; a bulk adds per-recipient rows."""
    first = docs[0]
    view: dict[str, Any] = {
        "transactionId": first["transaction_id"],
        "channel": Channel(first["channel"]).api_name,
        "result": _result_of(docs),
        "providerMessageId": first.get("provider_message_id") if len(docs) == 1 else None,
        "queuedAt": iso(first.get("queued_at")),
        "deliveredAt": iso(
            max((d["delivered_at"] for d in docs if d.get("delivered_at")), default=None)
        ),
    }
    if len(docs) == 1:
        view["failureReason"] = first.get("failure_reason")
        view["attempts"] = [attempt_view(a, camel=True) for a in first.get("attempts", [])]
    else:
        counts: dict[str, int] = {}
        for d in docs:
            result = Status(d["status"]).result
            counts[result] = counts.get(result, 0) + 1
        view["summary"] = counts
        view["recipients"] = [
            {
                "userId": d["recipient"],
                "notificationId": d["_id"],
                "result": Status(d["status"]).result,
                "providerMessageId": d.get("provider_message_id"),
                "failureReason": d.get("failure_reason"),
                "deliveredAt": iso(d.get("delivered_at")),
            }
            for d in docs
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
                "tokenSuffix": d["token"][-6:],
                "registeredAt": iso(d.get("registered_at")),
            }
            for d in doc.get("devices", [])
        ],
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def provider_view(doc: Doc) -> dict[str, Any]:
    """A provider config without its secrets."""
    return {
        "providerId": doc.get("provider_id") or doc["provider_type"],
        "providerType": doc["provider_type"],
        "channel": Channel(doc["channel"]).api_name,
        "active": doc.get("active", False),
        "priority": doc.get("priority", 0),
        "endpoint": doc.get("endpoint"),
        "credentialsConfigured": bool(doc.get("credentials_enc")),
        "credentialFields": sorted(doc.get("credential_fields", [])),
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
        "createdAt": iso(doc.get("created_at")),
    }
