"""The notification record, its attempts and its status changes, as typed models.

Only `shared.db.notifications` turns these into BSON and back (`to_document` /
`from_document`); everything else reads attributes. Field names are the stored names, so a
record written before the models existed reads the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.db.base import utcnow
from shared.domain import Category, Channel, Environment, Status
from shared.ids import new_id


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Content(_Model):
    """What a notification says when it names no template (seed 000 `content`)."""

    title: str | None = None
    body: str = ""
    subject: str | None = None
    data: dict[str, Any] | None = None
    deep_link: str | None = None
    image_url: str | None = None
    feed_id: str | None = None  # the in-app feed it lands in; None is feed `default`


class TemplateRef(_Model):
    """The template version a seed-003 request was rendered against."""

    code: str
    version: int
    # Where that version lives. A reference stored before environments existed names a
    # template stored under the old single environment, `production`.
    environment: str = Environment.PRODUCTION.value


class WorkflowStepRef(_Model):
    """The workflow step a record was made for (`manage/trigger`)."""

    workflow_id: str
    key: str
    version: int
    step: int  # the step's index in the workflow's `steps`
    # An escalation step: cancelled (reason `read`) if the in-app notification with this id
    # was read by the time the step is due.
    skip_if_read: str | None = None


class AttemptTarget(_Model):
    """One address's answer when an attempt went to several (a user's devices)."""

    to: str
    outcome: str
    reason: str | None = None


class Attempt(_Model):
    """One delivery attempt, or one decision that made no provider call (`provider` None)."""

    n: int | None = None
    at: datetime
    worker: str | None = None
    provider: str | None = None
    provider_type: str | None = None  # the adapter's type (sendgrid, fcm, …): a bounded label
    outcome: str  # an Outcome name (DELIVERED, RETRY, …) or, with no call, the final status
    reason: str | None = None
    detail: str | None = None
    status_code: int | None = None
    duration_ms: float = 0.0
    provider_ms: float | None = None
    retry_after_s: float | None = None
    targets: list[AttemptTarget] | None = None


class DeliveryChange(_Model):
    """What a verdict writes besides the status; only the fields given are written.

    A field given as None is written as None (it clears an earlier value, e.g. the failure
    reason of a retry that has now succeeded); a field not given is left as it is.
    """

    attempt_count: int | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    waiting_since: datetime | None = None
    circuit_waits: int | None = None
    failure_reason: str | None = None
    failure_detail: str | None = None
    dead_lettered_at: datetime | None = None

    def given(self) -> dict[str, Any]:
        """The fields set explicitly, by stored name."""
        return self.model_dump(exclude_unset=True)


class NotificationRecord(_Model):
    """One notification: one (request, recipient, channel), with its whole history."""

    id: str = Field(alias="_id")
    tenant_id: str
    transaction_id: str
    channel: Channel
    recipient: str
    category: str = Category.TRANSACTIONAL.value
    priority: int = 1
    status: Status
    source: str
    content: Content | None = None
    template: TemplateRef | None = None
    variables: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    # The environment of the API key that sent it: the worker uses that environment's
    # provider configs. A record stored before environments existed reads as development.
    environment: str = Environment.DEVELOPMENT.value
    # A critical workflow's notification: preferences and quiet hours do not apply.
    critical: bool = False
    workflow: WorkflowStepRef | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    attempt_count: int = 0
    replays: int = 0
    created_at: datetime
    queued_at: datetime | None = None
    updated_at: datetime
    deliver_at: datetime | None = None
    expires_at: datetime | None = None  # not delivered by then: FAILED, reason `expired`
    enqueued_at: datetime | None = None
    processing_at: datetime | None = None
    lease_until: datetime | None = None
    worker: str | None = None
    next_attempt_at: datetime | None = None
    waiting_since: datetime | None = None
    circuit_waits: int = 0
    provider: str | None = None
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    failure_reason: str | None = None
    failure_detail: str | None = None
    dead_lettered_at: datetime | None = None
    completed_at: datetime | None = None
    delivered_at: datetime | None = None
    confirmed_at: datetime | None = None  # a provider receipt said it reached the recipient
    replayed_at: datetime | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def new(
        cls,
        *,
        tenant_id: str,
        channel: Channel,
        recipient: str,
        source: str,
        transaction_id: str | None = None,
        category: str = Category.TRANSACTIONAL.value,
        priority: int = 1,
        correlation_id: str | None = None,
        content: Content | None = None,
        template: TemplateRef | None = None,
        variables: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        notification_id: str | None = None,
        deliver_at: datetime | None = None,
        status: Status = Status.QUEUED,
        expires_at: datetime | None = None,
        environment: str = Environment.DEVELOPMENT.value,
        critical: bool = False,
        workflow: WorkflowStepRef | None = None,
    ) -> NotificationRecord:
        """A record not yet stored: QUEUED (the seed reports SENT), or DELAYED / SCHEDULED
        until `deliver_at`. Without a transaction id, the notification is its own transaction.
        """
        now = utcnow()
        record_id = notification_id or new_id("ntf")
        return cls(
            id=record_id,
            tenant_id=tenant_id,
            transaction_id=transaction_id or record_id,
            channel=channel,
            recipient=recipient,
            category=category,
            priority=priority,
            status=status,
            source=source,
            content=content,
            template=template,
            variables=variables,
            metadata=metadata,
            idempotency_key=idempotency_key,
            request_id=request_id,
            correlation_id=correlation_id,
            environment=environment,
            critical=critical,
            workflow=workflow,
            created_at=now,
            queued_at=now,
            updated_at=now,
            deliver_at=deliver_at,
            expires_at=expires_at,
        )

    @property
    def is_published(self) -> bool:
        """True once the broker confirmed a message for the record's current cycle."""
        return self.enqueued_at is not None
