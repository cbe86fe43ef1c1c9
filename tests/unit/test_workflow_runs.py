"""A workflow's rules and the records one trigger makes (pure: no database, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import Channel, Status
from shared.errors import ValidationFailed
from shared.workflow_model import WorkflowDefinition, WorkflowStep, key_from_name, problems
from shared.workflow_runs import (
    CHANNEL_OFF_REASON,
    Trigger,
    Workflow,
    explicitly_enabled,
    records_for,
    render_steps,
)

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


def _workflow(*steps: WorkflowStep, **fields: Any) -> Workflow:
    definition = WorkflowDefinition(name="Escalate", steps=list(steps), **fields)
    return Workflow(workflow_id="wf_1", key="escalate", version=3, definition=definition)


def _trigger(**fields: Any) -> Trigger:
    return Trigger(
        tenant_id="t1",
        environment="production",
        transaction_id="txn_1",
        payload={"who": "Ada"},
        **fields,
    )


ESCALATION = (
    WorkflowStep(channel=Channel.IN_APP, title="Hi {{ who }}", body="in-app"),
    WorkflowStep(channel=Channel.PUSH, body="push", delay_seconds=600, skip_if_read=0),
    WorkflowStep(
        channel=Channel.EMAIL, subject="s", body="mail", delay_seconds=3600, skip_if_read=0
    ),
)


def _run(workflow: Workflow, users: list[str], **kw: Any) -> list[Any]:
    contents = render_steps(workflow, {"who": "Ada"})
    return records_for(
        workflow, _trigger(**kw), users=users, subscribers={}, contents=contents, now=NOW
    )


def test_each_user_gets_every_step_with_delays_and_escalation_links() -> None:
    records = _run(_workflow(*ESCALATION), ["a", "b"])
    assert [(r.recipient, r.channel, r.status) for r in records] == [
        ("a", Channel.IN_APP, Status.QUEUED),
        ("a", Channel.PUSH, Status.DELAYED),
        ("a", Channel.EMAIL, Status.DELAYED),
        ("b", Channel.IN_APP, Status.QUEUED),
        ("b", Channel.PUSH, Status.DELAYED),
        ("b", Channel.EMAIL, Status.DELAYED),
    ]
    a_in_app, a_push, a_mail, b_in_app, b_push, _ = records
    assert a_push.deliver_at == NOW + timedelta(seconds=600)
    assert a_mail.deliver_at == NOW + timedelta(seconds=3600)
    assert a_in_app.deliver_at is None
    assert a_push.workflow is not None
    assert a_push.workflow.skip_if_read == a_in_app.id
    assert b_push.workflow is not None
    assert b_push.workflow.skip_if_read == b_in_app.id
    assert a_in_app.workflow is not None
    assert a_in_app.workflow.skip_if_read is None
    assert {r.transaction_id for r in records} == {"txn_1"}
    assert {r.environment for r in records} == {"production"}
    assert a_in_app.content is not None
    assert a_in_app.content.title == "Hi Ada"
    ref = a_mail.workflow
    assert ref is not None
    assert (ref.workflow_id, ref.key, ref.version, ref.step) == ("wf_1", "escalate", 3, 2)


def test_idempotency_keys_are_per_user_and_step() -> None:
    records = _run(_workflow(*ESCALATION[:2]), ["a"], idempotency_key="k")
    assert [r.idempotency_key for r in records] == ["trigger:k:a:0", "trigger:k:a:1"]
    assert {r.idempotency_key for r in _run(_workflow(*ESCALATION[:2]), ["a"])} == {None}


def test_a_channel_off_by_default_is_opted_out_unless_enabled_or_critical() -> None:
    steps = (
        WorkflowStep(channel=Channel.IN_APP, body="x"),
        WorkflowStep(channel=Channel.SMS, body="y"),
    )
    off = {Channel.SMS: False}
    workflow = _workflow(*steps, preference_settings=off)
    contents = render_steps(workflow, {})
    keen = {"preferences": {"sms": {"enabled": True}}}
    records = records_for(
        workflow,
        _trigger(),
        users=["quiet", "keen"],
        subscribers={"keen": keen},
        contents=contents,
        now=NOW,
    )
    statuses = {(r.recipient, r.channel): r for r in records}
    skipped = statuses[("quiet", Channel.SMS)]
    assert skipped.status is Status.OPTED_OUT
    assert skipped.failure_reason == CHANNEL_OFF_REASON
    assert skipped.completed_at == NOW
    assert [a.outcome for a in skipped.attempts] == ["OPTED_OUT"]
    assert statuses[("keen", Channel.SMS)].status is Status.QUEUED
    assert statuses[("quiet", Channel.IN_APP)].status is Status.QUEUED

    critical = _workflow(*steps, preference_settings=off, critical=True)
    records = records_for(
        critical, _trigger(), users=["quiet"], subscribers={}, contents=contents, now=NOW
    )
    assert [r.status for r in records] == [Status.QUEUED, Status.QUEUED]
    assert all(r.critical for r in records)


def test_explicit_enable_reads_only_a_true_choice() -> None:
    assert not explicitly_enabled(None, Channel.PUSH)
    assert not explicitly_enabled({}, Channel.PUSH)
    assert not explicitly_enabled({"preferences": {"push": {"enabled": False}}}, Channel.PUSH)
    assert explicitly_enabled({"preferences": {"push": {"enabled": True}}}, Channel.PUSH)


def test_rendering_names_the_missing_variable_and_the_step() -> None:
    workflow = _workflow(WorkflowStep(channel=Channel.PUSH, body="{{ a }} {{ payload.b }}"))
    assert render_steps(workflow, {"a": 1, "b": 2})[0].body == "1 2"
    with pytest.raises(ValidationFailed) as caught:
        render_steps(workflow, {})
    assert caught.value.details == ["payload.a is required by workflow escalate step 0"]


def test_problems_name_each_step_and_field() -> None:
    definition = WorkflowDefinition(
        name="x",
        steps=[
            WorkflowStep(channel=Channel.PUSH, body="ok", deep_link="app://{{ x"),
            WorkflowStep(channel=Channel.EMAIL, body="b", skip_if_read=0),
            WorkflowStep(channel=Channel.IN_APP, body="", delay_seconds=10**9),
        ],
    )
    assert problems(definition) == [
        "workflow.steps[0].deepLink is not a valid template "
        "(line 1: unexpected end of template, expected 'end of print statement'.)",
        "workflow.steps[1].subject is required for EMAIL (or give a title)",
        "workflow.steps[1].skipIfRead must name an IN_APP step: step 0 is PUSH",
        "workflow.steps[2].body must not be empty when the step has no title",
        "workflow.steps[2].delaySeconds must be between 0 and 2592000",
    ]
    assert problems(WorkflowDefinition(name="x", steps=[])) == [
        "workflow.steps must contain between 1 and 20 steps"
    ]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Welcome Notification", "welcome-notification"),
        ("  Order #42 — shipped!  ", "order-42-shipped"),
        ("!!!", "workflow"),
        ("x" * 100, "x" * 64),
    ],
)
def test_keys_are_derived_from_names(name: str, key: str) -> None:
    assert key_from_name(name) == key
