"""Rendering refuses blanks and unsafe templates; statuses map to the seed's results."""

from __future__ import annotations

import pytest

from shared.domain import Channel, ProviderType, Status
from shared.errors import ValidationFailed
from shared.ids import new_id
from shared.rendering import check_syntax, render_fields


def test_renders_every_field() -> None:
    out = render_fields(
        {"subject": "Hi {{ name }}", "title": None, "body": "{{ meta.campaign | upper }}"},
        {"name": "Ann", "meta": {"campaign": "onboarding"}},
        template_code="t",
    )
    assert out == {"subject": "Hi Ann", "title": None, "body": "ONBOARDING"}


def test_every_missing_variable_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        render_fields({"body": "{{ a }} {{ b }} {{ c }}"}, {"b": 1}, template_code="t")
    assert caught.value.details == [
        "variables.a is required by template t",
        "variables.c is required by template t",
    ]


def test_sandbox_refuses_attribute_escapes() -> None:
    with pytest.raises(ValidationFailed) as caught:
        render_fields({"body": "{{ x.__class__.__mro__ }}"}, {"x": 1}, template_code="t")
    assert "t" in caught.value.details[0]


def test_syntax_errors_name_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_syntax({"subject": "ok", "body": "{% if %}"})
    assert caught.value.details[0].startswith("body is not a valid template (line 1:")


def test_status_results_follow_the_seed() -> None:
    assert Status.QUEUED.result == "SENT"
    assert Status.PROCESSING.result == "SENT"
    assert Status.RETRYING.result == "SENT"
    assert Status.INVALID_CREDENTIAL.result == "INVALID_CREDENTIAL"
    assert Status.DELIVERED.is_final
    assert not Status.QUEUED.is_final
    assert Channel.from_api("IN_APP") is Channel.IN_APP
    assert Channel.IN_APP.api_name == "IN_APP"
    assert ProviderType.SENDGRID.channel is Channel.EMAIL
    assert ProviderType.FCM.channel is Channel.PUSH


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_id("ntf") for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith("ntf_") and len(i) == 30 for i in ids)
    assert ids[0][:14] <= ids[-1][:14]
