"""Environments: edits only in development (403 in production), every edit a pending change,
promotion of one change or all of them (exact versions, harmless twice), production keys
running what was promoted, and provider configs per environment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.crypto import CredentialCipher
from shared.db.base import utcnow
from shared.settings import Settings
from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import (
    configure_fcm,
    configure_sendgrid,
    ok_rpc,
    rpc,
    wait_final_status,
)
from tests.integration.workflow_support import (
    WELCOME,
    create_workflow,
    production_key,
    push_device,
    step_rows,
    wait_steps_final,
)
from tests.support import System, Tenant

TEMPLATE = {"templateCode": "welcome_email", "channel": "EMAIL", "subject": "Hi", "body": "Hello"}


@pytest.fixture
async def prod(system: System, tenant: Tenant) -> AsyncIterator[Tenant]:
    """The test's tenant through a production key."""
    client = await production_key(system, tenant)
    try:
        yield client
    finally:
        await client.client.aclose()


async def test_edits_with_a_production_key_are_refused_naming_the_rule(
    tenant: Tenant, prod: Tenant
) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    await ok_rpc(tenant, "manage/promote-all-changes", {})
    attempts = [
        ("manage/create-workflow", {"workflow": WELCOME}, "workflows"),
        (
            "manage/update-workflow",
            {"workflowId": workflow["workflowId"], "workflow": {"active": False}},
            "workflows",
        ),
        ("manage/delete-workflow", {"workflowId": workflow["workflowId"]}, "workflows"),
        ("manage/create-template", TEMPLATE, "templates"),
    ]
    for name, body, what in attempts:
        response = await rpc(prod, name, body)
        assert response.status_code == 403, (name, response.text)
        assert response.json()["error"] == [
            f"{what} are edited in development and reach production by promotion "
            "(manage/promote-change): this API key acts in production"
        ]
    current = await ok_rpc(prod, "manage/get-workflow", {"workflowId": workflow["workflowId"]})
    assert (current["workflow"]["version"], current["workflow"]["active"]) == (1, True)
    assert (await ok_rpc(tenant, "manage/get-pending-changes", {}))["changes"] == []


async def test_every_development_edit_is_a_pending_change(tenant: Tenant) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    workflow_id = workflow["workflowId"]
    await ok_rpc(
        tenant, "manage/update-workflow", {"workflowId": workflow_id, "workflow": {"tags": []}}
    )
    await ok_rpc(tenant, "manage/create-template", TEMPLATE)
    await ok_rpc(tenant, "manage/create-template", {**TEMPLATE, "locale": "de"})
    await ok_rpc(tenant, "manage/delete-workflow", {"workflowId": workflow_id})

    changes = (await ok_rpc(tenant, "manage/get-pending-changes", {}))["changes"]
    assert [
        (c["entityType"], c["entityId"], c["key"], c["action"], c["version"]) for c in changes
    ] == [
        ("workflow", workflow_id, "welcome-notification", "create", 1),
        ("workflow", workflow_id, "welcome-notification", "update", 2),
        ("template", "welcome_email", "welcome_email", "create", 1),
        ("template", "welcome_email", "welcome_email", "update", 2),
        ("workflow", workflow_id, "welcome-notification", "delete", 3),
    ]
    assert len({c["changeId"] for c in changes}) == 5
    assert all(c["changeId"].startswith("chg_") for c in changes)
    assert {c["changedBy"].split(":")[0] for c in changes} == {"test"}
    assert [c["changedAt"] for c in changes] == sorted(c["changedAt"] for c in changes)
    assert [c.get("locale") for c in changes[2:4]] == [None, "de"]


async def test_promote_change_copies_that_exact_version_and_twice_is_harmless(
    tenant: Tenant, prod: Tenant
) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    workflow_id = workflow["workflowId"]
    await ok_rpc(
        tenant,
        "manage/update-workflow",
        {"workflowId": workflow_id, "workflow": {"name": "Welcome v2"}},
    )
    first, second = (await ok_rpc(tenant, "manage/get-pending-changes", {}))["changes"]
    missing = await rpc(prod, "manage/get-workflow", {"workflowId": workflow_id})
    assert missing.status_code == 404

    promoted = await ok_rpc(tenant, "manage/promote-change", {"changeId": first["changeId"]})
    assert promoted["promoted"] is True
    assert promoted["change"]["changeId"] == first["changeId"]
    in_prod = (await ok_rpc(prod, "manage/get-workflow", {"workflowId": workflow_id}))["workflow"]
    expected = {**workflow, "environment": "production"}
    assert {k: v for k, v in in_prod.items() if k != "updatedAt"} == {
        k: v for k, v in expected.items() if k != "updatedAt"
    }
    pending = (await ok_rpc(tenant, "manage/get-pending-changes", {}))["changes"]
    assert [c["changeId"] for c in pending] == [second["changeId"]]

    await ok_rpc(tenant, "manage/promote-change", {"changeId": second["changeId"]})
    again = await ok_rpc(prod, "manage/promote-change", {"changeId": first["changeId"]})
    assert again["promoted"] is False  # promoted before: nothing changes
    in_prod = (await ok_rpc(prod, "manage/get-workflow", {"workflowId": workflow_id}))["workflow"]
    assert (in_prod["version"], in_prod["name"]) == (2, "Welcome v2")
    assert (await ok_rpc(tenant, "manage/get-pending-changes", {}))["changes"] == []

    unknown = await rpc(tenant, "manage/promote-change", {"changeId": "chg_nope"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == ["change chg_nope does not exist"]


async def test_promote_all_then_a_production_key_triggers_the_workflow(
    system: System, tenant: Tenant, prod: Tenant, fcm: FakeFcm
) -> None:
    workflow = await create_workflow(tenant, WELCOME)
    await ok_rpc(tenant, "manage/create-template", TEMPLATE)
    before = await rpc(
        prod, "manage/trigger", {"workflowKey": "welcome-notification", "userId": "u1"}
    )
    assert before.status_code == 404
    assert before.json()["error"] == ["workflow welcome-notification does not exist in production"]

    assert await ok_rpc(tenant, "manage/promote-all-changes", {}) == {"promoted": 2}
    assert await ok_rpc(tenant, "manage/promote-all-changes", {}) == {"promoted": 0}

    # Production has its own provider configs: push is configured with the production key.
    await configure_fcm(prod, fcm.url, fcm.service_account_json())
    await push_device(prod, "u1")
    triggered = await ok_rpc(
        prod, "manage/trigger", {"workflowId": workflow["workflowId"], "userId": "u1"}
    )
    status = await wait_steps_final(prod, triggered["transactionId"])
    assert [s["summary"] for s in status["steps"]] == [{"DELIVERED": 1}, {"DELIVERED": 1}]
    assert len(fcm.messages) == 1
    assert system.db is not None
    record = await system.db.notifications.get(
        tenant_id=tenant.tenant_id, notification_id=step_rows(status, 1)[0]["notificationId"]
    )
    assert record is not None
    assert record.environment == "production"


async def test_provider_configs_live_per_environment(
    tenant: Tenant, prod: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        prod,
        "manage/configure-provider",
        {
            "providerType": "SENDGRID",
            "credentials": {"apiKey": DEFAULT_API_KEY, "fromEmail": "live@acme.test"},
            "endpoint": sendgrid.url,
        },
    )
    dev_list = (await ok_rpc(tenant, "manage/get-providers", {}))["providers"]
    prod_list = (await ok_rpc(prod, "manage/get-providers", {}))["providers"]
    assert [(p["providerId"], p["environment"]) for p in dev_list] == [("SENDGRID", "development")]
    assert [(p["providerId"], p["environment"]) for p in prod_list] == [("SENDGRID", "production")]
    assert prod_list[0]["credentials"]["fromEmail"] == "live@acme.test"

    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u1", "subscriberData": {"email": "u1@example.com"}},
    )
    for client in (tenant, prod):
        sent = await ok_rpc(
            client,
            "manage/send",
            {"userId": "u1", "channel": "EMAIL", "content": {"subject": "s", "body": "b"}},
        )
        assert (await wait_final_status(client, sent["transactionId"]))["result"] == "DELIVERED"
    assert [m["from"]["email"] for m in sendgrid.mails] == ["noreply@acme.test", "live@acme.test"]


async def test_templates_are_read_in_the_keys_environment(
    system: System, tenant: Tenant, prod: Tenant, sendgrid: FakeSendGrid
) -> None:
    created = (await ok_rpc(tenant, "manage/create-template", TEMPLATE))["template"]
    assert (created["version"], created["environment"]) == (1, "development")
    missing = await rpc(prod, "manage/get-template", {"templateCode": "welcome_email"})
    assert missing.status_code == 404
    assert (await ok_rpc(prod, "manage/list-templates", {}))["templates"] == []

    await ok_rpc(tenant, "manage/promote-all-changes", {})
    in_prod = await ok_rpc(prod, "manage/get-template", {"templateCode": "welcome_email"})
    assert {k: v for k, v in in_prod["template"].items() if k != "environment"} == {
        k: v for k, v in created.items() if k != "environment"
    }

    # A seed-003 send with the production key renders production's copy, with production's
    # provider.
    await configure_sendgrid(prod, sendgrid.url, DEFAULT_API_KEY)
    user = "123e4567-e89b-12d3-a456-426614174000"
    await ok_rpc(
        prod, "manage/create-subscriber", {"userId": user, "subscriberData": {"email": "j@x.io"}}
    )
    response = await prod.client.post(
        "/api/v1/notifications",
        json={
            "notification_type": "email",
            "user_id": user,
            "template_code": "welcome_email",
            "variables": {},
            "request_id": "req-prod-1",
        },
    )
    assert response.status_code == 200, response.text
    status = await wait_final_status(prod, "req-prod-1")
    assert status["result"] == "DELIVERED"
    assert system.db is not None
    record = await system.db.notifications.get_by_idempotency_key(
        tenant_id=tenant.tenant_id, idempotency_key="request:req-prod-1"
    )
    assert record is not None
    assert record.template is not None
    assert (record.environment, record.template.environment) == ("production", "production")


async def test_templates_stored_before_environments_stay_in_production(
    system: System, tenant: Tenant, prod: Tenant
) -> None:
    assert system.db is not None
    for version in (1, 2):  # as the build before environments stored them
        await system.db.templates.col.insert_one(
            {
                "tenant_id": tenant.tenant_id,
                "environment": "production",
                "template_code": "legacy",
                "version": version,
                "channel": "email",
                "subject": f"old {version}",
                "body": "old",
                "locale": None,
                "created_at": utcnow(),
            }
        )
    old = await ok_rpc(prod, "manage/get-template", {"templateCode": "legacy"})
    assert old["template"]["subject"] == "old 2"
    assert (await rpc(tenant, "manage/get-template", {"templateCode": "legacy"})).status_code == 404

    # Re-created in development, it is numbered above them, so promoting it cannot collide.
    created = await ok_rpc(tenant, "manage/create-template", {**TEMPLATE, "templateCode": "legacy"})
    assert created["template"]["version"] == 3
    assert await ok_rpc(tenant, "manage/promote-all-changes", {}) == {"promoted": 1}
    new = await ok_rpc(prod, "manage/get-template", {"templateCode": "legacy"})
    assert (new["template"]["version"], new["template"]["subject"]) == (3, "Hi")


async def test_a_provider_config_stored_before_environments_serves_development(
    system: System, settings: Settings, tenant: Tenant, prod: Tenant, sendgrid: FakeSendGrid
) -> None:
    assert system.db is not None
    await system.db.providers.col.insert_one(  # as the build before environments stored it
        {
            "tenant_id": tenant.tenant_id,
            "provider_id": "SENDGRID",
            "provider_type": "SENDGRID",
            "channel": "email",
            "active": True,
            "priority": 0,
            "endpoint": sendgrid.url,
            "credentials_enc": CredentialCipher(settings.secret_key).encrypt(
                {"apiKey": DEFAULT_API_KEY, "fromEmail": "old@acme.test"}
            ),
            "credential_fields": ["apiKey", "fromEmail"],
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
    )
    listed = (await ok_rpc(tenant, "manage/get-providers", {}))["providers"]
    assert [(p["providerId"], p["environment"]) for p in listed] == [("SENDGRID", "development")]
    assert (await ok_rpc(prod, "manage/get-providers", {}))["providers"] == []

    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "u1", "subscriberData": {"email": "u1@example.com"}},
    )
    outcomes = []
    for client in (tenant, prod):
        sent = await ok_rpc(
            client,
            "manage/send",
            {"userId": "u1", "channel": "EMAIL", "content": {"subject": "s", "body": "b"}},
        )
        outcomes.append(await wait_final_status(client, sent["transactionId"]))
    assert [o["result"] for o in outcomes] == ["DELIVERED", "NO_CHANNEL"]
    assert outcomes[1]["failureReason"] == "no_provider"
    assert [m["from"]["email"] for m in sendgrid.mails] == ["old@acme.test"]

    # Configured again with the development key, it is the same config, now labelled.
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    every = (await ok_rpc(tenant, "manage/get-providers", {"includeInactive": True}))["providers"]
    assert [(p["providerId"], p["environment"]) for p in every] == [("SENDGRID", "development")]
