"""A workflow's definition as stored, and the rules it must keep (each error names its field).

A workflow is a list of steps, each a notification on one channel with its content (jinja
templates rendered with the trigger's `payload`), optionally sent `delay_seconds` after the
trigger and skipped if an earlier in-app step was read by then (`skip_if_read`): enough for
"in-app now, push in 10 minutes if unread, e-mail in an hour if still unread".
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import Category, Channel
from shared.errors import ValidationFailed
from shared.rendering import check_syntax

MAX_STEPS = 20
MAX_DELAY_S = 30 * 24 * 3600
# The fields of a step that are jinja templates, rendered with the trigger's payload.
RENDERED_FIELDS = ("title", "subject", "body", "deep_link")
# How a problem names a step field: the API's camelCase.
_API_FIELD = {"deep_link": "deepLink", "skip_if_read": "skipIfRead"}


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WorkflowStep(_Stored):
    """One step: a notification on `channel`."""

    channel: Channel
    title: str | None = None
    subject: str | None = None
    body: str | None = None
    data: dict[str, Any] | None = None
    deep_link: str | None = None
    image_url: str | None = None
    delay_seconds: int = 0
    skip_if_read: int | None = None  # index of an earlier IN_APP step


class WorkflowDefinition(_Stored):
    """What a workflow version says (the stored fields besides ids, versions and changes)."""

    name: str
    description: str | None = None
    active: bool = True
    critical: bool = False
    category: str = Category.TRANSACTIONAL.value
    tags: list[str] = Field(default_factory=list)
    steps: list[WorkflowStep]
    # The workflow's channel defaults: False turns the channel's steps off (OPTED_OUT) unless
    # the subscriber explicitly enabled that channel. A channel not named is on.
    preference_settings: dict[Channel, bool] = Field(default_factory=dict)

    def channel_on_by_default(self, channel: Channel) -> bool:
        """The workflow's default for a channel."""
        return self.preference_settings.get(channel, True)

    def stored(self) -> dict[str, Any]:
        """The BSON-ready form."""
        return self.model_dump(mode="json")


def problems(definition: WorkflowDefinition, *, prefix: str = "workflow") -> list[str]:
    """Every rule the definition breaks, each naming the step and field."""
    errors: list[str] = []
    steps = definition.steps
    if not 1 <= len(steps) <= MAX_STEPS:
        errors.append(f"{prefix}.steps must contain between 1 and {MAX_STEPS} steps")
    for index, step in enumerate(steps):
        where = f"{prefix}.steps[{index}]"
        if not (step.title or "").strip() and not (step.body or "").strip():
            errors.append(f"{where}.body must not be empty when the step has no title")
        if step.channel is Channel.EMAIL and not (step.subject or step.title):
            errors.append(f"{where}.subject is required for EMAIL (or give a title)")
        if not 0 <= step.delay_seconds <= MAX_DELAY_S:
            errors.append(f"{where}.delaySeconds must be between 0 and {MAX_DELAY_S}")
        errors += _template_problems(step, where)
        if step.skip_if_read is not None:
            errors += _skip_if_read_problems(steps, index, where)
    return errors


def _template_problems(step: WorkflowStep, where: str) -> list[str]:
    fields = {name: getattr(step, name) for name in RENDERED_FIELDS}
    try:
        check_syntax(fields)
    except ValidationFailed as exc:
        # check_syntax names the bare field ("title is not a valid template …").
        return [f"{where}.{_api_name(d)}" for d in exc.details]
    return []


def _api_name(detail: str) -> str:
    field, _, rest = detail.partition(" ")
    return f"{_API_FIELD.get(field, field)} {rest}"


def _skip_if_read_problems(steps: list[WorkflowStep], index: int, where: str) -> list[str]:
    target = steps[index].skip_if_read
    assert target is not None
    if not 0 <= target < index:
        earlier = "there is none" if index == 0 else f"0 to {index - 1}"
        return [f"{where}.skipIfRead must name an earlier step ({earlier})"]
    if steps[target].channel is not Channel.IN_APP:
        return [
            f"{where}.skipIfRead must name an IN_APP step: step {target} is "
            f"{steps[target].channel.api_name}"
        ]
    return []


def check(definition: WorkflowDefinition, *, prefix: str = "workflow") -> None:
    """Raise ValidationFailed listing every problem."""
    errors = problems(definition, prefix=prefix)
    if errors:
        raise ValidationFailed(errors)


_SLUG = re.compile(r"[^a-z0-9]+")


def key_from_name(name: str) -> str:
    """`Welcome Notification` → `welcome-notification` (at most 64 characters)."""
    slug = _SLUG.sub("-", name.lower()).strip("-")[:64].strip("-")
    return slug or "workflow"
