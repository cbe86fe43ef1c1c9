"""The one notification a closed digest sends: its events, in arrival order, as content.

With a template (`digestConfig.templateCode`), the template renders with `digest.count`,
`digest.events` (each event's content, plus `at` and `transactionId`) and `digest.key`.
Without one: a digest of one event sends that event; of several, the title is the last
event's and the body says how many updates there were.
"""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.domain import Channel, Environment
from shared.records import Content, NotificationRecord, TemplateRef
from shared.timefmt import iso_z


def digest_variables(doc: Doc) -> dict[str, Any]:
    """What a digest template sees."""
    events = [
        {**e.get("content", {}), "at": iso_z(e.get("at")), "transactionId": e["transaction_id"]}
        for e in doc.get("events", [])
    ]
    return {"digest": {"count": len(events), "events": events, "key": doc["digest_key"]}}


def default_content(doc: Doc) -> Content:
    """The content of a digest sent without a template."""
    events = doc["events"]
    last = Content.model_validate(events[-1].get("content", {}))
    if len(events) == 1:
        return last
    count = len(events)
    return Content(
        title=last.title,
        subject=last.subject or last.title,
        body=f"You have {count} new updates.",
        data={"digestId": str(doc["_id"]), "count": str(count)},
        deep_link=last.deep_link,
    )


def digest_record(doc: Doc) -> NotificationRecord:
    """The digest's notification; its idempotency key is the digest's, so a closer that runs
    twice (a crash, a redelivery, the sweep) stores it once."""
    events = doc["events"]
    template = doc.get("template")
    return NotificationRecord.new(
        tenant_id=doc["tenant_id"],
        channel=Channel(doc["channel"]),
        recipient=doc["recipient"],
        source="digest",
        transaction_id=doc["_id"],
        category=events[-1].get("category") or "TRANSACTIONAL",
        priority=max(int(e.get("priority") or 1) for e in events),
        correlation_id=events[-1].get("correlation_id"),
        content=None if template else default_content(doc),
        template=TemplateRef(**template) if template else None,
        variables=digest_variables(doc) if template else None,
        metadata={"digest_id": doc["_id"], "digest_key": doc["digest_key"], "count": len(events)},
        idempotency_key=f"digest:{doc['_id']}",
        # A digest opened before environments existed reads as development, like its events.
        environment=doc.get("environment") or Environment.DEVELOPMENT.value,
    )
