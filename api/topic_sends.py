"""The fan-out document of a topic send: what the fan-out worker needs to expand it."""

from __future__ import annotations

from typing import Any

from api.topic_schemas import SendToTopicRequest
from shared.db.base import Doc, utcnow
from shared.db.fanouts import FanoutState
from shared.ids import new_id


def fanout_document(
    *,
    tenant_id: str,
    environment: str,
    topic: Doc,
    correlation_id: str | None,
    idempotency_key: str | None,
    exclude: list[str] | None,
    body: SendToTopicRequest | None = None,
    workflow: dict[str, Any] | None = None,
) -> Doc:
    """A PENDING fan-out of `topic`: a send's content (`body`) or a workflow trigger."""
    now = utcnow()
    doc: Doc = {
        "_id": new_id("txn"),
        "tenant_id": tenant_id,
        "kind": "topic",
        "topic_id": topic["_id"],
        "topic_key": topic["key"],
        # The topic's highest subscription number now: where the fan-out ends if the topic
        # is deleted before a worker reads it (`workers/fanout/expand.py`).
        "seq_high": int(topic.get("next_seq", 0)),
        "environment": environment,
        "correlation_id": correlation_id,
        "exclude": sorted(set(exclude or [])),
        "state": FanoutState.PENDING.value,
        "recipients": 0,
        "excluded": 0,
        "batches": 0,
        "created_at": now,
        "updated_at": now,
    }
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
    if body is not None:
        doc.update(
            channel=body.channel_enum.value,
            category=body.category,
            priority=body.priority,
            content=body.content.to_record().model_dump(exclude_none=True),
        )
    if workflow is not None:
        doc["workflow"] = workflow
    return doc
