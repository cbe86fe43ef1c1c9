"""Request bodies of the workflow, trigger, promotion and tenant-settings RPCs (camelCase)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from api.schemas import ApiCategory, ApiChannel, NonEmpty, PageRequest, Strict
from shared.domain import Channel
from shared.locales import LOCALE_TAG
from shared.workflow_model import MAX_DELAY_S, MAX_STEPS, WorkflowDefinition, WorkflowStep

Text = Annotated[str, StringConstraints(max_length=2000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class WorkflowStepBody(Strict):
    """One step (seed 000), plus our escalation fields `delaySeconds` and `skipIfRead`."""

    channel: ApiChannel
    title: Text | None = None
    subject: Text | None = None
    body: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    data: dict[str, Any] | None = None
    deepLink: Text | None = None
    imageUrl: Text | None = None
    delaySeconds: int = Field(default=0, ge=0, le=MAX_DELAY_S)
    skipIfRead: int | None = Field(default=None, ge=0, lt=MAX_STEPS)

    def to_step(self) -> WorkflowStep:
        """The stored form."""
        return WorkflowStep(
            channel=Channel.from_api(self.channel),
            title=self.title,
            subject=self.subject,
            body=self.body,
            data=self.data,
            deep_link=self.deepLink,
            image_url=self.imageUrl,
            delay_seconds=self.delaySeconds,
            skip_if_read=self.skipIfRead,
        )


class PreferenceSettings(Strict):
    """Seed 000's `preferenceSettings`: the workflow's default per channel."""

    email: bool = True
    push: bool = True
    inApp: bool = True
    sms: bool = True
    chat: bool = True

    def to_stored(self) -> dict[Channel, bool]:
        """By channel."""
        return {
            Channel.EMAIL: self.email,
            Channel.PUSH: self.push,
            Channel.IN_APP: self.inApp,
            Channel.SMS: self.sms,
            Channel.CHAT: self.chat,
        }


class WorkflowPatch(Strict):
    """Any subset of a workflow's fields (`manage/update-workflow`); `steps` replaces all."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    description: Text | None = None
    active: bool | None = None
    critical: bool | None = None
    category: ApiCategory | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    steps: list[WorkflowStepBody] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    preferenceSettings: PreferenceSettings | None = None

    def stored_fields(self) -> dict[str, Any]:
        """The given fields, by stored name."""
        out: dict[str, Any] = {}
        for name in ("name", "description", "active", "critical", "category", "tags"):
            if name in self.model_fields_set:
                out[name] = getattr(self, name)
        if self.steps is not None:
            out["steps"] = [s.to_step() for s in self.steps]
        if self.preferenceSettings is not None:
            out["preference_settings"] = self.preferenceSettings.to_stored()
        return out


class WorkflowBody(WorkflowPatch):
    """A whole workflow (`manage/create-workflow`): `name` and `steps` are required."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    steps: list[WorkflowStepBody] = Field(min_length=1, max_length=MAX_STEPS)

    def to_definition(self) -> WorkflowDefinition:
        """The stored definition (defaults filled in)."""
        return WorkflowDefinition(
            name=self.name,
            description=self.description,
            active=True if self.active is None else self.active,
            critical=bool(self.critical),
            category=self.category or "TRANSACTIONAL",
            tags=self.tags or [],
            steps=[s.to_step() for s in self.steps],
            preference_settings=(self.preferenceSettings or PreferenceSettings()).to_stored(),
        )


class CreateWorkflowRequest(Strict):
    """`manage/create-workflow`."""

    workflow: WorkflowBody


class UpdateWorkflowRequest(Strict):
    """`manage/update-workflow`: a partial update; every update is a new version."""

    workflowId: NonEmpty
    workflow: WorkflowPatch


class GetWorkflowRequest(Strict):
    """`manage/get-workflow`: the current version, or a given one."""

    workflowId: NonEmpty
    version: int | None = Field(default=None, ge=1)


class WorkflowIdRequest(Strict):
    """`manage/delete-workflow`."""

    workflowId: NonEmpty


class ListWorkflowsRequest(PageRequest):
    """`manage/list-workflows`: with `tags`, those carrying at least one of them."""

    tags: list[Tag] | None = None


class TriggerRequest(Strict):
    """`manage/trigger` (our extension): a workflow by id or key, to a user or up to 100."""

    workflowId: NonEmpty | None = None
    workflowKey: NonEmpty | None = None
    userId: NonEmpty | None = None
    userIds: list[NonEmpty] | None = Field(default=None, min_length=1)
    topicKey: NonEmpty | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotencyKey: NonEmpty | None = None


class ChangeRequest(Strict):
    """`manage/promote-change`."""

    changeId: NonEmpty


class TenantSettingsRequest(Strict):
    """`manage/update-tenant-settings`: `defaultLocale` (null clears it)."""

    defaultLocale: str | None

    @field_validator("defaultLocale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not LOCALE_TAG.match(value):
            raise ValueError("must be a locale tag such as en-US")
        return value
