"""Parsing dead letters, matching filters, the replayed message, and the selection rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from api.dead_letter_schemas import ChangeDeadLettersRequest, ListDeadLettersRequest
from shared.db.notifications.documents import from_document
from shared.dlq.model import DeadLetter, DeadLetterFilter, replay_body, replay_headers
from shared.dlq.ops import check_selection
from shared.dlq.replay import record_problem
from shared.domain import Channel
from shared.errors import ValidationFailed
from shared.messaging.dead_letters import dead_letter_headers
from tests.records import record_doc

FAILED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def letter(
    *,
    tenant: str = "t1",
    reason: str = "bounced",
    failed_at: datetime = FAILED_AT,
    channel: Channel = Channel.EMAIL,
    body: bytes | None = None,
    headers: dict[str, Any] | None = None,
) -> DeadLetter:
    """A dead letter as a worker would have written it."""
    default_headers = dead_letter_headers(
        reason=reason,
        detail="550",
        attempts=3,
        original_queue=f"p.{channel.value}.queue",
        failed_at=failed_at,
        tenant_id=tenant,
        transaction_id="txn_1",
        notification_id="ntf_1",
        final_status="FAILED",
        correlation_id="corr-1",
    )
    default_body = {
        "v": 1,
        "notification_id": "ntf_1",
        "tenant_id": tenant,
        "channel": channel.value,
        "attempt": 3,
        "kind": "deliver",
    }
    return DeadLetter.parse(
        queue=f"p.{channel.value}.dlq",
        channel=channel,
        position=0,
        headers=default_headers if headers is None else headers,
        body=orjson.dumps(default_body) if body is None else body,
        message_id="ntf_1",
        correlation_id="corr-1",
        priority=3,
        redelivered=False,
    )


def test_a_worker_written_message_parses_into_its_parts() -> None:
    parsed = letter()
    assert (parsed.notification_id, parsed.tenant_id, parsed.transaction_id) == (
        "ntf_1",
        "t1",
        "txn_1",
    )
    assert parsed.info.reason == "bounced"
    assert parsed.info.failed_at == FAILED_AT
    assert parsed.info.attempts == 3
    assert parsed.problem is None


def test_a_hand_made_or_broken_message_is_readable_but_not_replayable() -> None:
    raw = letter(body=b"not json", headers={})
    assert raw.body is None
    assert raw.notification_id == "ntf_1"  # from the AMQP message id
    assert raw.problem == "malformed_message"
    forged = letter(headers={"x-tenant-id": "t2", "x-notification-id": "ntf_1"})
    assert forged.problem == "malformed_message"  # header and body disagree on the tenant
    elsewhere = letter(body=orjson.dumps({"notification_id": "ntf_1", "channel": "push"}))
    assert elsewhere.problem == "malformed_message"  # a push message on the e-mail DLQ
    bytes_headers = letter(headers={"x-failure-reason": b"bounced", "x-tenant-id": b"t1"})
    assert bytes_headers.info.reason == "bounced"


def test_filters_match_on_every_given_field() -> None:
    subject = letter()
    assert DeadLetterFilter().matches(subject)
    assert DeadLetterFilter(tenant_id="t1", reason="bounced").matches(subject)
    assert not DeadLetterFilter(tenant_id="t2").matches(subject)
    assert not DeadLetterFilter(reason="provider_error").matches(subject)
    assert not DeadLetterFilter(channels=frozenset({Channel.PUSH})).matches(subject)
    assert DeadLetterFilter(transaction_ids=frozenset({"txn_1"})).matches(subject)
    assert not DeadLetterFilter(transaction_ids=frozenset({"txn_2"})).matches(subject)
    assert not DeadLetterFilter(notification_ids=frozenset({"ntf_2"})).matches(subject)
    # Half-open window: failed_after <= failed_at < failed_before.
    assert DeadLetterFilter(failed_after=FAILED_AT).matches(subject)
    assert not DeadLetterFilter(failed_before=FAILED_AT).matches(subject)
    assert DeadLetterFilter(failed_before=FAILED_AT + timedelta(seconds=1)).matches(subject)
    undated = letter(headers={"x-tenant-id": "t1"})
    assert not DeadLetterFilter(failed_after=FAILED_AT).matches(undated)


def test_the_replayed_message_starts_a_new_cycle_without_the_failure() -> None:
    subject = letter()
    when = datetime(2025, 3, 2, 8, 30, 0, 123000, tzinfo=UTC)
    assert replay_body(subject)["attempt"] == 1
    assert replay_body(subject)["notification_id"] == "ntf_1"
    headers = replay_headers(subject, replayed_at=when)
    assert headers == {
        "correlation_id": "corr-1",
        "attempt": 1,
        "x-replayed-at": "2025-03-02T08:30:00.123Z",
    }


def test_replay_and_purge_must_name_what_they_take() -> None:
    check_selection(filters=DeadLetterFilter(), limit=3, all_matching=False)
    check_selection(filters=DeadLetterFilter(), limit=None, all_matching=True)
    check_selection(
        filters=DeadLetterFilter(transaction_ids=frozenset({"t"})), limit=None, all_matching=False
    )
    for limit, every in ((None, False), (0, False), (3, True)):
        with pytest.raises(ValidationFailed):
            check_selection(filters=DeadLetterFilter(), limit=limit, all_matching=every)


def test_only_a_dead_lettered_record_of_the_same_channel_is_replayable() -> None:
    now = datetime.now(UTC)

    def problem(**fields: Any) -> str | None:
        doc = record_doc(tenant_id="t", **{"channel": Channel.EMAIL, **fields})
        return record_problem(from_document(doc), channel=Channel.EMAIL)

    assert record_problem(None, channel=Channel.EMAIL) == "record_missing"
    assert problem(status="FAILED", dead_lettered_at=now) is None
    assert problem(status="RATE_LIMITED", dead_lettered_at=now) is None
    assert problem(status="FAILED") == "record_not_dead_lettered"
    assert problem(status="QUEUED", dead_lettered_at=now) == "record_not_dead_lettered"
    assert problem(status="FAILED", dead_lettered_at=now, channel="push") == (
        "record_channel_mismatch"
    )


def test_rpc_bodies_become_tenant_scoped_filters() -> None:
    body = ListDeadLettersRequest.model_validate(
        {"channel": "PUSH", "failedAfter": "2025-03-01T13:00:00+01:00", "transactionIds": ["a"]}
    )
    f = body.to_filter(tenant_id="t9")
    assert f.tenant_id == "t9"
    assert f.channels == frozenset({Channel.PUSH})
    assert f.failed_after == FAILED_AT
    assert f.transaction_ids == frozenset({"a"})
    assert ListDeadLettersRequest.model_validate({}).to_filter(tenant_id="t").channels == (
        frozenset(Channel)
    )
    with pytest.raises(ValidationError):
        ChangeDeadLettersRequest.model_validate({"dryRun": True})
