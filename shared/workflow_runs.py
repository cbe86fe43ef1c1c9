"""Running a workflow: the notification records one trigger makes, one per (user, step).

Every step is rendered once with the trigger's payload (a missing variable is a 400 naming
the step), then becomes a record of the normal pipeline: QUEUED, or DELAYED until
`delay_seconds` after the trigger. A step whose channel the workflow turns off by default is
stored already OPTED_OUT (never published) unless the subscriber explicitly enabled that
channel or the workflow is critical. An escalation step records the id of the in-app record
it escalates, so the worker can tell, when it is due, whether that message was read.

A topic trigger's fan-out can call `records_for` page by page with one transaction id; given
an idempotency key (the transaction id will do), a page made twice stores nothing twice: the
keys are per (idempotency key, user, step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.db.base import Doc, utcnow
from shared.domain import Channel, Status
from shared.records import Attempt, Content, NotificationRecord, WorkflowStepRef
from shared.rendering import render_fields
from shared.workflow_model import RENDERED_FIELDS, WorkflowDefinition

SOURCE = "manage.trigger"
CHANNEL_OFF_REASON = "workflow_channel_off"


@dataclass(frozen=True, slots=True)
class Workflow:
    """One stored workflow version, ready to run."""

    workflow_id: str
    key: str
    version: int
    definition: WorkflowDefinition

    @classmethod
    def from_document(cls, doc: Doc) -> Workflow:
        """A stored version."""
        return cls(
            workflow_id=doc["workflow_id"],
            key=doc["key"],
            version=int(doc["version"]),
            definition=WorkflowDefinition.model_validate(doc),
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    """What one `manage/trigger` call asks for."""

    tenant_id: str
    environment: str
    transaction_id: str
    payload: Mapping[str, Any]
    idempotency_key: str | None = None
    correlation_id: str | None = None


def render_steps(workflow: Workflow, payload: Mapping[str, Any]) -> list[Content]:
    """Every step's content rendered with the payload (its keys, and itself as `payload`).

    Raises ValidationFailed naming each missing variable and the step that needs it.
    """
    variables = {**payload, "payload": payload}
    contents = []
    for index, step in enumerate(workflow.definition.steps):
        rendered = render_fields(
            {name: getattr(step, name) for name in RENDERED_FIELDS},
            variables,
            template_code=workflow.key,
            variables_name="payload",
            owner=f"workflow {workflow.key} step {index}",
        )
        contents.append(
            Content(
                title=rendered["title"],
                subject=rendered["subject"],
                body=rendered["body"] or "",
                data=step.data,
                deep_link=rendered["deep_link"],
                image_url=step.image_url,
            )
        )
    return contents


def explicitly_enabled(subscriber: Mapping[str, Any] | None, channel: Channel) -> bool:
    """True if the subscriber turned this channel on themselves.

    Preferences are stored on the subscriber document, only where the user said something
    (the preferences work's format): `preferences.<channel>.enabled`, set by
    `update-preferences`. Nothing said is no explicit choice.
    """
    stored = (subscriber or {}).get("preferences")
    choice = stored.get(channel.value) if isinstance(stored, Mapping) else None
    return isinstance(choice, Mapping) and choice.get("enabled") is True


def records_for(
    workflow: Workflow,
    trigger: Trigger,
    *,
    users: list[str],
    subscribers: Mapping[str, Mapping[str, Any]],
    contents: list[Content],
    now: datetime | None = None,
) -> list[NotificationRecord]:
    """The records of one trigger for these users: every step of every user."""
    now = now or utcnow()
    definition = workflow.definition
    records: list[NotificationRecord] = []
    for user in users:
        step_ids: list[str] = []
        for index, step in enumerate(definition.steps):
            escalates = step_ids[step.skip_if_read] if step.skip_if_read is not None else None
            record = NotificationRecord.new(
                tenant_id=trigger.tenant_id,
                channel=step.channel,
                recipient=user,
                source=SOURCE,
                transaction_id=trigger.transaction_id,
                category=definition.category,
                correlation_id=trigger.correlation_id,
                content=contents[index],
                idempotency_key=_idempotency_key(trigger, user, index),
                deliver_at=now + timedelta(seconds=step.delay_seconds)
                if step.delay_seconds
                else None,
                status=Status.DELAYED if step.delay_seconds else Status.QUEUED,
                environment=trigger.environment,
                critical=definition.critical,
                workflow=WorkflowStepRef(
                    workflow_id=workflow.workflow_id,
                    key=workflow.key,
                    version=workflow.version,
                    step=index,
                    skip_if_read=escalates,
                ),
            )
            step_ids.append(record.id)
            off = not definition.critical and not definition.channel_on_by_default(step.channel)
            if off and not explicitly_enabled(subscribers.get(user), step.channel):
                record = opted_out(record, now=now)
            records.append(record)
    return records


def opted_out(record: NotificationRecord, *, now: datetime) -> NotificationRecord:
    """The record ended before delivery: the workflow turns its channel off by default."""
    attempt = Attempt(n=1, at=now, outcome=Status.OPTED_OUT.value, reason=CHANNEL_OFF_REASON)
    return record.model_copy(
        update={
            "status": Status.OPTED_OUT,
            "failure_reason": CHANNEL_OFF_REASON,
            "attempts": [attempt],
            "attempt_count": 1,
            "completed_at": now,
            "updated_at": now,
            "deliver_at": None,
        }
    )


def _idempotency_key(trigger: Trigger, user: str, step: int) -> str | None:
    if trigger.idempotency_key is None:
        return None
    return f"trigger:{trigger.idempotency_key}:{user}:{step}"
