"""Seed 003's validation, authentication and existence rules; a refused request stores nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.helpers import ok_rpc
from tests.support import System, Tenant

USER = "123e4567-e89b-12d3-a456-426614174000"  # the seed's own example id


def valid_body(**changes: Any) -> dict[str, Any]:
    """The seed's example request, with changes; a value of ... removes the field."""
    body: dict[str, Any] = {
        "notification_type": "email",
        "user_id": USER,
        "template_code": "welcome_email",
        "variables": {"name": "John Doe", "link": "https://example.com/welcome"},
        "request_id": f"req-{uuid.uuid4()}",
        "priority": 1,
        "metadata": {"title": "Welcome to Our Platform"},
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


async def records(system: System, tenant: Tenant) -> int:
    assert system.db is not None
    return await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id})


async def post(tenant: Tenant, body: Any) -> httpx.Response:
    return await tenant.client.post("/api/v1/notifications", json=body)


CASES = [
    ({"notification_type": ...}, "notification_type is required"),
    (
        {"notification_type": "sms"},
        "notification_type must be one of the following values: email, push",
    ),
    ({"user_id": ...}, "user_id is required"),
    ({"user_id": "not-a-uuid"}, "user_id must be a valid UUID"),
    ({"user_id": 42}, "user_id must be a string"),
    ({"template_code": ...}, "template_code is required"),
    ({"template_code": ""}, "template_code should not be empty"),
    ({"variables": ...}, "variables is required"),
    ({"variables": "name=John"}, "variables must be an object"),
    ({"request_id": ...}, "request_id is required"),
    ({"request_id": ""}, "request_id should not be empty"),
    ({"priority": 6}, "priority must not be greater than 5"),
    ({"priority": 0}, "priority must not be less than 1"),
    ({"priority": "high"}, "priority must be a whole number"),
    ({"metadata": ["x"]}, "metadata must be an object"),
]


@pytest.mark.parametrize(("changes", "message"), CASES, ids=[c[1] for c in CASES])
async def test_each_rule_is_named_and_nothing_is_stored(
    system: System, tenant: Tenant, changes: dict[str, Any], message: str
) -> None:
    response = await post(tenant, valid_body(**changes))
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "Validation failed", "error": [message]}
    assert await records(system, tenant) == 0


async def test_the_seeds_two_errors_come_together(tenant: Tenant) -> None:
    response = await post(tenant, valid_body(user_id="bad", priority=7))
    assert response.status_code == 400
    assert response.json()["error"] == [
        "user_id must be a valid UUID",
        "priority must not be greater than 5",
    ]


async def test_body_must_be_a_json_object(tenant: Tenant) -> None:
    broken = await tenant.client.post(
        "/api/v1/notifications", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"] == ["body must be valid JSON"]
    array = await post(tenant, [1, 2])
    assert array.status_code == 400
    assert array.json()["success"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "unknown key", "wrong scheme", "empty"],
)
async def test_401_without_valid_credentials(system: System, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as anonymous:
        response = await anonymous.post("/api/v1/notifications", json=valid_body(), headers=headers)
        status = await anonymous.get("/api/v1/notifications/ntf_x", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "message": "Unauthorized",
        "error": "Invalid or missing authentication token",
    }
    assert status.status_code == 401


async def test_apikey_scheme_is_accepted_too(system: System, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        response = await client.post(
            "/api/v1/notifications",
            json=valid_body(),
            headers={"Authorization": f"ApiKey {tenant.api_key}"},
        )
    assert response.status_code == 404  # authenticated; the user does not exist in this tenant


async def test_unknown_user_and_template_are_404_naming_both(
    system: System, tenant: Tenant
) -> None:
    response = await post(tenant, valid_body())
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "message": "Not found",
        "error": [f"user_id {USER} does not exist", "template_code welcome_email does not exist"],
    }
    assert await records(system, tenant) == 0


async def _user_and_template(tenant: Tenant, *, channel: str = "EMAIL") -> None:
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": USER, "subscriberData": {"email": "john@example.com"}},
    )
    await ok_rpc(
        tenant,
        "manage/create-template",
        {
            "templateCode": "welcome_email",
            "channel": channel,
            "subject": "Welcome, {{ name }}",
            "body": "Hi {{ name }}, start here: {{ link }} ({{ meta.campaign }})",
        },
    )


async def test_missing_template_variables_are_named(system: System, tenant: Tenant) -> None:
    await _user_and_template(tenant)
    response = await post(tenant, valid_body(variables={"name": "John"}))
    assert response.status_code == 400
    assert response.json()["error"] == [
        "variables.link is required by template welcome_email",
        "variables.meta is required by template welcome_email",
    ]
    nested = await post(tenant, valid_body(variables={"name": "J", "link": "l", "meta": {}}))
    assert nested.status_code == 400
    assert "campaign" in nested.json()["error"][0]
    assert await records(system, tenant) == 0


async def test_template_of_another_channel_is_refused(system: System, tenant: Tenant) -> None:
    await _user_and_template(tenant, channel="PUSH")
    body = valid_body(variables={"name": "J", "link": "l", "meta": {"campaign": "c"}})
    response = await post(tenant, body)
    assert response.status_code == 400
    assert response.json()["error"] == ["template_code welcome_email is a push template, not email"]
    assert await records(system, tenant) == 0


async def test_unknown_notification_is_404(tenant: Tenant) -> None:
    response = await tenant.client.get("/api/v1/notifications/ntf_missing")
    assert response.status_code == 404
    assert response.json()["success"] is False
