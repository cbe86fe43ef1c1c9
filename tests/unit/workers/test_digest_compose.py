"""The notification a closed digest sends, built from the digest document alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain import Channel
from shared.rendering import render_fields
from workers.digest.compose import digest_record

AT = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


def _digest(count: int, **fields: Any) -> dict[str, Any]:
    events = [
        {
            "transaction_id": f"txn_{i}",
            "at": AT + timedelta(seconds=i),
            "content": {"title": f"Update {i}", "body": f"body {i}"},
            "category": "PRODUCT",
            "priority": 1 + i % 3,
            "correlation_id": f"corr-{i}",
        }
        for i in range(count)
    ]
    return {
        "_id": "dig_1",
        "tenant_id": "t1",
        "recipient": "u1",
        "channel": "email",
        "digest_key": "coaching",
        "events": events,
        **fields,
    }


def test_without_a_template_the_last_title_and_a_count() -> None:
    record = digest_record(_digest(3))
    assert record.channel is Channel.EMAIL
    assert record.transaction_id == "dig_1"
    assert record.idempotency_key == "digest:dig_1"  # a second close stores nothing new
    assert record.content is not None
    assert (record.content.title, record.content.subject) == ("Update 2", "Update 2")
    assert record.content.body == "You have 3 new updates."
    assert record.priority == 3
    assert record.category == "PRODUCT"
    assert record.correlation_id == "corr-2"
    assert record.metadata == {"digest_id": "dig_1", "digest_key": "coaching", "count": 3}


def test_a_digest_of_one_sends_that_event() -> None:
    record = digest_record(_digest(1))
    assert record.content is not None
    assert (record.content.title, record.content.body) == ("Update 0", "body 0")


def test_a_template_sees_the_count_and_every_event_in_arrival_order() -> None:
    record = digest_record(_digest(3, template={"code": "weekly", "version": 2}))
    assert record.content is None
    assert record.template is not None
    assert (record.template.code, record.template.version) == ("weekly", 2)
    rendered = render_fields(
        {
            "title": "{{ digest.count }} updates on {{ digest.key }}",
            "body": "{% for e in digest.events %}{{ e.title }}@{{ e.at }};{% endfor %}",
        },
        record.variables or {},
        template_code="weekly",
    )
    assert rendered["title"] == "3 updates on coaching"
    assert rendered["body"] == (
        "Update 0@2026-03-18T10:00:00.000Z;Update 1@2026-03-18T10:00:01.000Z;"
        "Update 2@2026-03-18T10:00:02.000Z;"
    )
