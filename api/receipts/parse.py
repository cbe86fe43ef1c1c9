"""Each provider's receipt body as normalized receipts (one per event), ready to store.

A receipt: `receipt_id` (`<PROVIDER>:<event id>`, unique per tenant), `provider`, `kind` (what
the event means for the record, below), `event` (the provider's own name for it),
`provider_message_id` and, when the provider echoes it, our `notification_id`, the `address`
it concerns, `occurred_at`, a `detail` for operators, and `raw`: the event as received.

Kinds: `delivered` (confirms), `hard_bounce` (the address is dead: INVALID_CREDENTIAL and
suppression), `complaint` (the recipient objected: suppressed as opted out), `soft` (a
deferral or transient bounce: history only), `other` (processed, open, sent, …: history only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.db.base import Doc
from shared.providers.twilio import DEAD_NUMBER_CODES

DELIVERED = "delivered"
HARD_BOUNCE = "hard_bounce"
COMPLAINT = "complaint"
SOFT = "soft"
OTHER = "other"

# Twilio delivery error codes saying the number itself is dead (unknown handset, landline or
# unreachable carrier), besides the send-time codes the adapter already treats so.
TWILIO_DEAD_CODES = frozenset({30005, 30006}) | DEAD_NUMBER_CODES
_SENDGRID_DEAD_DROPS = ("bounced address", "invalid")


def _epoch(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sendgrid_kind(event: Mapping[str, Any]) -> str:
    name = str(event.get("event") or "")
    if name == "delivered":
        return DELIVERED
    if name == "bounce":
        # SendGrid's `blocked` is a temporary refusal; `bounce` proper is permanent.
        return SOFT if event.get("type") == "blocked" else HARD_BOUNCE
    if name == "dropped":
        reason = str(event.get("reason") or "").lower()
        return HARD_BOUNCE if any(r in reason for r in _SENDGRID_DEAD_DROPS) else OTHER
    if name == "deferred":
        return SOFT
    if name == "spamreport":
        return COMPLAINT
    return OTHER


def sendgrid_receipts(events: Sequence[Any]) -> list[Doc]:
    """The Event Webhook's JSON array; events without `sg_event_id` are skipped."""
    receipts: list[Doc] = []
    for event in events:
        if not isinstance(event, Mapping) or not event.get("sg_event_id"):
            continue
        message_id = str(event.get("sg_message_id") or "").split(".", 1)[0] or None
        detail = event.get("reason") or event.get("response") or event.get("status")
        receipts.append(
            {
                "receipt_id": f"SENDGRID:{event['sg_event_id']}",
                "provider": "SENDGRID",
                "kind": _sendgrid_kind(event),
                "event": str(event.get("event")),
                "provider_message_id": message_id,
                "notification_id": event.get("notification_id"),
                "claimed_tenant": event.get("tenant_id"),
                "address": event.get("email"),
                "occurred_at": _epoch(event.get("timestamp")),
                "detail": str(detail) if detail else None,
                "raw": json.dumps(event, default=str),
            }
        )
    return receipts


def twilio_receipts(form: Mapping[str, str]) -> list[Doc]:
    """One status callback (a form) as one receipt; none without MessageSid/MessageStatus."""
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        return []
    code = form.get("ErrorCode")
    kind = OTHER
    if status == "delivered":
        kind = DELIVERED
    elif status in ("undelivered", "failed"):
        kind = HARD_BOUNCE if code and code.isdigit() and int(code) in TWILIO_DEAD_CODES else SOFT
    return [
        {
            "receipt_id": f"TWILIO:{sid}:{status}",
            "provider": "TWILIO",
            "kind": kind,
            "event": status,
            "provider_message_id": sid,
            "notification_id": None,
            "address": form.get("To"),
            "occurred_at": None,
            "detail": f"error {code}" if code else None,
            "raw": json.dumps(dict(form)),
        }
    ]


def sns_message(envelope: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """SES's event inside an SNS Notification (`Message` is a JSON string; moto sends an
    object)."""
    message = envelope.get("Message")
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    return message if isinstance(message, Mapping) else None


def ses_receipts(envelope: Mapping[str, Any]) -> list[Doc]:
    """An SNS Notification carrying an SES Delivery / Bounce / Complaint as receipts."""
    event = sns_message(envelope)
    event_id = envelope.get("MessageId")
    if event is None or not event_id:
        return []
    name = str(event.get("notificationType") or event.get("eventType") or "")
    mail = event.get("mail") if isinstance(event.get("mail"), Mapping) else {}
    assert isinstance(mail, Mapping)
    kind, addresses, detail = OTHER, list(mail.get("destination") or []), None
    if name == "Delivery":
        kind = DELIVERED
    elif name == "Bounce":
        bounce = event.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        kind = HARD_BOUNCE if permanent else SOFT
        recipients = bounce.get("bouncedRecipients") or []
        addresses = [
            r.get("emailAddress") for r in recipients if isinstance(r, Mapping)
        ] or addresses
        detail = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
    elif name == "Complaint":
        kind = COMPLAINT
        recipients = (event.get("complaint") or {}).get("complainedRecipients") or []
        addresses = [
            r.get("emailAddress") for r in recipients if isinstance(r, Mapping)
        ] or addresses
    elif name == "DeliveryDelay":
        kind = SOFT
    return [
        {
            "receipt_id": f"SES:{event_id}:{i}" if i else f"SES:{event_id}",
            "provider": "SES",
            "kind": kind,
            "event": name,
            "provider_message_id": mail.get("messageId"),
            "notification_id": None,
            "address": address,
            "occurred_at": _iso(envelope.get("Timestamp")),
            "detail": detail,
            "raw": json.dumps(event, default=str),
        }
        for i, address in enumerate(addresses or [None])
    ]
