"""The escalation rule: a workflow step whose in-app message was read is cancelled (`read`)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain import Channel, Status
from shared.records import NotificationRecord, WorkflowStepRef
from workers.delivery import policy
from workers.delivery.policy import Situation, VerdictKind

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


def _situation(*, read: bool, subscriber: dict[str, str] | None = None) -> Situation:
    record = NotificationRecord.new(
        tenant_id="t1",
        channel=Channel.PUSH,
        recipient="u1",
        source="test",
        workflow=WorkflowStepRef(
            workflow_id="wf_1", key="k", version=1, step=1, skip_if_read="ntf_in_app"
        ),
    )
    return Situation(
        record=record,
        channel=Channel.PUSH,
        subscriber=subscriber,
        addresses=1 if subscriber else 0,
        now=NOW,
        worker="w1",
        earlier_read=read,
    )


def test_a_read_escalation_is_cancelled_without_a_call() -> None:
    verdict = policy.before_sending(_situation(read=True, subscriber={"subscriber_id": "u1"}))
    assert verdict is not None
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.FINAL,
        Status.CANCELLED,
        "read",
    )
    assert not verdict.dead_letter
    [made] = verdict.attempts
    assert (made.outcome, made.provider, made.reason) == ("CANCELLED", None, "read")


def test_an_unread_escalation_goes_on_to_the_other_rules() -> None:
    assert policy.before_sending(_situation(read=False, subscriber={"subscriber_id": "u1"})) is None
    verdict = policy.before_sending(_situation(read=False))
    assert verdict is not None
    assert verdict.status is Status.NO_CHANNEL


def test_the_rule_comes_first() -> None:
    # Read means the user was reached: that is the outcome, whatever else is missing.
    verdict = policy.before_sending(_situation(read=True))
    assert verdict is not None
    assert verdict.status is Status.CANCELLED
    assert policy.PRE_SEND_RULES[0] is policy.unread_escalation
