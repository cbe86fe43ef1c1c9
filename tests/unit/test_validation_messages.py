"""pydantic errors become messages naming the field and the rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas import SendBulkRequest, SendNotificationRequest
from api.validation import describe_errors


def errors_of(model: Any, body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return describe_errors(caught.value.errors())


def test_seed_example_messages() -> None:
    body = {
        "notification_type": "email",
        "user_id": "nope",
        "template_code": "t",
        "variables": {},
        "request_id": "r",
        "priority": 9,
    }
    assert errors_of(SendNotificationRequest, body) == [
        "user_id must be a valid UUID",
        "priority must not be greater than 5",
    ]


def test_nested_fields_are_named_with_their_path() -> None:
    errors = errors_of(SendBulkRequest, {"userIds": ["a", 3], "channel": "FAX", "content": {}})
    assert errors == [
        "userIds[1] must be a string",
        "channel must be one of the following values: PUSH, IN_APP, EMAIL, SMS, CHAT",
        "content.body is required",
    ]


def test_seed_example_uuid_is_accepted_though_not_v4() -> None:
    body = SendNotificationRequest.model_validate(
        {
            "notification_type": "push",
            "user_id": "123E4567-E89B-12D3-A456-426614174000",
            "template_code": "t",
            "variables": {},
            "request_id": "r",
        }
    )
    assert body.user_id == "123e4567-e89b-12d3-a456-426614174000"
    assert body.priority == 1


def test_a_nested_object_given_as_something_else_is_named() -> None:
    errors = errors_of(SendBulkRequest, {"userIds": ["a"], "channel": "PUSH", "content": "hi"})
    assert errors == ["content must be an object"]
