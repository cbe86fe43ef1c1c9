"""Workflow CRUD: versions, keys, partial updates, listing, deletion, and every validation
error naming its step and field (nothing stored when refused)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import ok_rpc, rpc
from tests.integration.workflow_support import WELCOME, create_workflow, welcome
from tests.support import Tenant


async def _refused(tenant: Tenant, workflow: dict[str, Any]) -> list[str]:
    response = await rpc(tenant, "manage/create-workflow", {"workflow": workflow})
    assert response.status_code == 400, response.text
    errors: list[str] = response.json()["error"]
    return errors


async def test_create_answers_the_seed_workflow_with_id_key_and_version(tenant: Tenant) -> None:
    created = await create_workflow(tenant, WELCOME)

    assert created["workflowId"].startswith("wf_")
    assert created["key"] == "welcome-notification"
    assert created["version"] == 1
    assert created["environment"] == "development"
    assert {k: created[k] for k in WELCOME if k != "steps"} == {
        k: v for k, v in WELCOME.items() if k != "steps"
    }
    assert [(s["channel"], s["title"], s["body"]) for s in created["steps"]] == [
        (s["channel"], s["title"], s["body"]) for s in WELCOME["steps"]
    ]
    got = await ok_rpc(tenant, "manage/get-workflow", {"workflowId": created["workflowId"]})
    assert got["workflow"] == created


async def test_a_second_workflow_with_the_same_name_gets_its_own_key(tenant: Tenant) -> None:
    first = await create_workflow(tenant, WELCOME)
    second = await create_workflow(tenant, WELCOME)
    assert (first["key"], second["key"]) == ("welcome-notification", "welcome-notification-2")
    assert first["workflowId"] != second["workflowId"]


async def test_each_update_is_a_new_version_and_old_versions_stay_readable(
    tenant: Tenant,
) -> None:
    created = await create_workflow(tenant, WELCOME)
    workflow_id = created["workflowId"]

    updated = await ok_rpc(
        tenant,
        "manage/update-workflow",
        {
            "workflowId": workflow_id,
            "workflow": {"name": "Welcome Notification v2", "active": True},
        },
    )
    v2 = updated["workflow"]
    assert (v2["version"], v2["name"], v2["key"]) == (2, "Welcome Notification v2", created["key"])
    assert v2["steps"] == created["steps"]  # not given: unchanged
    assert v2["createdAt"] == created["createdAt"]

    steps = [{"channel": "EMAIL", "subject": "Hi {{ name }}", "body": "Welcome, {{ name }}"}]
    v3 = (
        await ok_rpc(
            tenant,
            "manage/update-workflow",
            {"workflowId": workflow_id, "workflow": {"steps": steps}},
        )
    )["workflow"]
    assert (v3["version"], v3["name"], [s["channel"] for s in v3["steps"]]) == (
        3,
        "Welcome Notification v2",
        ["EMAIL"],
    )

    current = await ok_rpc(tenant, "manage/get-workflow", {"workflowId": workflow_id})
    assert current["workflow"]["version"] == 3
    first = await ok_rpc(tenant, "manage/get-workflow", {"workflowId": workflow_id, "version": 1})
    assert first["workflow"] == created


async def test_list_pages_and_filters_by_tag(tenant: Tenant) -> None:
    ids = []
    for i in range(5):
        tags = ["onboarding"] if i % 2 == 0 else ["billing"]
        ids.append(
            (await create_workflow(tenant, welcome(name=f"Flow {i}", tags=tags)))["workflowId"]
        )

    page1 = await ok_rpc(tenant, "manage/list-workflows", {"page": 1, "pageSize": 2})
    page3 = await ok_rpc(tenant, "manage/list-workflows", {"page": 3, "pageSize": 2})
    assert [w["workflowId"] for w in page1["workflows"]] == ids[:2]
    assert (page1["totalCount"], page1["hasMore"]) == (5, True)
    assert [w["workflowId"] for w in page3["workflows"]] == ids[4:]
    assert page3["hasMore"] is False

    tagged = await ok_rpc(tenant, "manage/list-workflows", {"tags": ["billing"]})
    assert [w["name"] for w in tagged["workflows"]] == ["Flow 1", "Flow 3"]
    # The tags of the current version count: re-tagging moves a workflow out of the filter.
    await ok_rpc(
        tenant, "manage/update-workflow", {"workflowId": ids[1], "workflow": {"tags": ["x"]}}
    )
    tagged = await ok_rpc(tenant, "manage/list-workflows", {"tags": ["billing"]})
    assert [w["name"] for w in tagged["workflows"]] == ["Flow 3"]


async def test_delete_hides_the_workflow_and_keeps_its_history(tenant: Tenant) -> None:
    created = await create_workflow(tenant, WELCOME)
    workflow_id = created["workflowId"]
    deleted = await ok_rpc(tenant, "manage/delete-workflow", {"workflowId": workflow_id})
    assert deleted == {"workflowId": workflow_id, "version": 2, "deleted": True}

    for name, body in (
        ("manage/get-workflow", {"workflowId": workflow_id}),
        ("manage/delete-workflow", {"workflowId": workflow_id}),
        ("manage/update-workflow", {"workflowId": workflow_id, "workflow": {"active": False}}),
    ):
        response = await rpc(tenant, name, body)
        assert response.status_code == 404, (name, response.text)
        assert response.json()["error"] == [f"workflow {workflow_id} does not exist"]
    assert (await ok_rpc(tenant, "manage/list-workflows", {}))["workflows"] == []
    old = await ok_rpc(tenant, "manage/get-workflow", {"workflowId": workflow_id, "version": 1})
    assert old["workflow"]["name"] == WELCOME["name"]


async def test_unknown_workflow_is_404(tenant: Tenant) -> None:
    response = await rpc(tenant, "manage/get-workflow", {"workflowId": "wf_nope"})
    assert response.status_code == 404
    assert response.json()["error"] == ["workflow wf_nope does not exist"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"steps": []}, "workflow.steps must contain at least 1 items"),
        (
            {"steps": [{"channel": "IN_APP", "body": "x"}] * 21},
            "workflow.steps must contain at most 20 items",
        ),
        (
            {"steps": [{"channel": "IN_APP", "body": "x"}, {"channel": "FAX", "body": "x"}]},
            "workflow.steps[1].channel must be one of the following values: "
            "PUSH, IN_APP, EMAIL, SMS, CHAT",
        ),
        (
            {"steps": [{"channel": "PUSH", "title": " ", "body": ""}]},
            "workflow.steps[0].body must not be empty when the step has no title",
        ),
        (
            {"steps": [{"channel": "IN_APP", "body": "x"}, {"channel": "PUSH", "body": "{{ a"}]},
            "workflow.steps[1].body is not a valid template "
            "(line 1: unexpected end of template, expected 'end of print statement'.)",
        ),
        (
            {"steps": [{"channel": "PUSH", "title": "{% if %}", "body": "x"}]},
            "workflow.steps[0].title is not a valid template "
            "(line 1: Expected an expression, got 'end of statement block')",
        ),
        (
            {"steps": [{"channel": "EMAIL", "body": "x"}]},
            "workflow.steps[0].subject is required for EMAIL (or give a title)",
        ),
        (
            {"steps": [{"channel": "PUSH", "body": "x", "delaySeconds": -1}]},
            "workflow.steps[0].delaySeconds must not be less than 0",
        ),
        (
            {"steps": [{"channel": "IN_APP", "body": "x"},
                       {"channel": "PUSH", "body": "y", "skipIfRead": 1}]},
            "workflow.steps[1].skipIfRead must name an earlier step (0 to 0)",
        ),
        (
            {"steps": [{"channel": "PUSH", "body": "x"},
                       {"channel": "EMAIL", "title": "t", "body": "y", "skipIfRead": 0}]},
            "workflow.steps[1].skipIfRead must name an IN_APP step: step 0 is PUSH",
        ),
        ({"name": ""}, "workflow.name should not be empty"),
        ({"active": "yes"}, "workflow.active must be a boolean"),
        ({"preferenceSettings": {"push": 1}}, "workflow.preferenceSettings.push must be a boolean"),
    ],
)  # fmt: skip
async def test_each_validation_error_names_the_step_and_field(
    tenant: Tenant, change: dict[str, Any], error: str
) -> None:
    errors = await _refused(tenant, welcome(**change))
    assert error in errors, errors
    assert (await ok_rpc(tenant, "manage/list-workflows", {}))["workflows"] == []


async def test_every_problem_is_reported_at_once(tenant: Tenant) -> None:
    errors = await _refused(
        tenant,
        welcome(
            steps=[
                {"channel": "EMAIL", "body": "{{ x"},
                {"channel": "PUSH", "title": "", "body": ""},
            ]
        ),
    )
    assert errors == [
        "workflow.steps[0].subject is required for EMAIL (or give a title)",
        "workflow.steps[0].body is not a valid template "
        "(line 1: unexpected end of template, expected 'end of print statement'.)",
        "workflow.steps[1].body must not be empty when the step has no title",
    ]


async def test_an_update_is_checked_as_a_whole_and_refused_updates_store_nothing(
    tenant: Tenant,
) -> None:
    created = await create_workflow(tenant, WELCOME)
    response = await rpc(
        tenant,
        "manage/update-workflow",
        {
            "workflowId": created["workflowId"],
            "workflow": {"steps": [{"channel": "PUSH", "body": "x", "skipIfRead": 0}]},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == [
        "workflow.steps[0].skipIfRead must name an earlier step (there is none)"
    ]
    current = await ok_rpc(tenant, "manage/get-workflow", {"workflowId": created["workflowId"]})
    assert current["workflow"]["version"] == 1
