"""Notification records as stored, for tests that stage a state directly in the database."""

from __future__ import annotations

from typing import Any

from shared.db.base import Doc
from shared.db.client import Database
from shared.db.notifications.documents import to_document
from shared.domain import Channel
from shared.records import Content, NotificationRecord


def record_doc(
    *,
    tenant_id: str,
    channel: Channel = Channel.IN_APP,
    recipient: str = "u1",
    transaction_id: str | None = None,
    correlation_id: str | None = None,
    priority: int = 1,
    source: str = "test",
    content: dict[str, Any] | None = None,
    **fields: Any,
) -> Doc:
    """A new record's stored document, with `fields` written over it as stored names."""
    record = NotificationRecord.new(
        tenant_id=tenant_id,
        channel=channel,
        recipient=recipient,
        transaction_id=transaction_id,
        correlation_id=correlation_id,
        priority=priority,
        source=source,
        content=Content(**(content or {"body": "hello"})),
    )
    doc = to_document(record)
    doc.update(fields)
    return doc


async def stored_doc(db: Database, *, tenant_id: str, notification_id: str) -> Doc | None:
    """The record exactly as stored (a test may check that a field is absent)."""
    return await db.notifications.col.find_one({"_id": notification_id, "tenant_id": tenant_id})
