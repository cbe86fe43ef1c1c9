"""Provider configuration through the registry: validation, masking, listing, stale configs."""

from __future__ import annotations

import json
from typing import Any

from shared.crypto import CredentialCipher
from shared.settings import Settings
from tests.fakes.apns import FakeApns
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import configure_sendgrid, ok_rpc, rpc, wait_final_status
from tests.support import System, Tenant


async def _configure_errors(tenant: Tenant, body: dict[str, Any]) -> list[str]:
    response = await rpc(tenant, "manage/configure-provider", body)
    assert response.status_code == 400, response.text
    errors: list[str] = response.json()["error"]
    return errors


async def test_get_providers_lists_active_ones_unless_asked_for_all(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    await configure_sendgrid(tenant, sendgrid.url, "SG.on-secret", providerId="sg-on")
    await configure_sendgrid(
        tenant, sendgrid.url, "SG.off-secret", providerId="sg-off", active=False, priority=1
    )

    active = await ok_rpc(tenant, "manage/get-providers", {})
    assert [(p["providerId"], p["active"]) for p in active["providers"]] == [("sg-on", True)]
    every = await ok_rpc(tenant, "manage/get-providers", {"includeInactive": True})
    assert [(p["providerId"], p["active"]) for p in every["providers"]] == [
        ("sg-on", True),
        ("sg-off", False),
    ]
    explicit = await ok_rpc(tenant, "manage/get-providers", {"includeInactive": False})
    assert explicit == active
    refused = await rpc(tenant, "manage/get-providers", {"includeInactive": "yes"})
    assert refused.status_code == 400


async def test_listed_credentials_are_masked_by_the_spec(
    tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    configured = await ok_rpc(
        tenant,
        "manage/configure-provider",
        {
            "providerType": "SENDGRID",
            "credentials": {"apiKey": "SG.top-secret-value", "fromEmail": "noreply@acme.test"},
            "endpoint": sendgrid.url,
        },
    )
    listed = await ok_rpc(tenant, "manage/get-providers", {})
    for view in (configured["provider"], *listed["providers"]):
        assert "top-secret" not in json.dumps(view)
        assert view["credentialFields"] == ["apiKey", "fromEmail"]
        assert view["credentials"] == {"apiKey": "********", "fromEmail": "noreply@acme.test"}


async def test_configure_names_each_bad_credential_field(tenant: Tenant) -> None:
    errors = await _configure_errors(
        tenant,
        {
            "providerType": "SENDGRID",
            "credentials": {"apiKey": 7, "fromEmail": "nobody", "fromName": 1, "apikey": "x"},
        },
    )
    assert errors == [
        "credentials.apiKey must be a string",
        "credentials.fromEmail must be an e-mail address",
        "credentials.fromName must be a string",
        "credentials.apikey is not a known credential field",
    ]
    errors = await _configure_errors(
        tenant,
        {"providerType": "FCM", "credentials": {"serviceAccountJson": json.dumps({"a": 1})}},
    )
    assert errors == [
        "credentials.serviceAccountJson lacks project_id",
        "credentials.serviceAccountJson lacks client_email",
        "credentials.serviceAccountJson lacks private_key",
    ]
    assert (await ok_rpc(tenant, "manage/get-providers", {"includeInactive": True})) == {
        "providers": []
    }


async def test_every_seed_provider_names_each_missing_field(tenant: Tenant) -> None:
    expected = {
        "APNS": ["keyId", "teamId", "privateKey", "bundleId"],
        "SES": ["accessKeyId", "secretAccessKey", "region", "fromEmail"],
        "TWILIO": ["accountSid", "authToken"],
    }
    for provider_type, fields in expected.items():
        errors = await _configure_errors(tenant, {"providerType": provider_type, "credentials": {}})
        assert errors == [f"credentials.{f} is required for {provider_type}" for f in fields]
    errors = await _configure_errors(tenant, {"providerType": "PIGEON", "credentials": {}})
    assert errors == [
        "providerType must be one of the following values: "
        "FCM, APNS, SENDGRID, SES, TWILIO, SLACK, DISCORD, NOVU"
    ]


async def test_no_secret_of_the_seven_is_ever_returned(tenant: Tenant) -> None:
    apns = FakeApns()
    secrets = {
        "APNS": (apns.credentials(), "privateKey"),
        "SES": (
            {
                "accessKeyId": "AKIA1",
                "secretAccessKey": "ses-secret",
                "region": "us-east-1",
                "fromEmail": "n@acme.test",
            },
            "secretAccessKey",
        ),
        "TWILIO": (
            {
                "accountSid": "AC" + "1" * 32,
                "authToken": "twilio-secret",
                "fromNumber": "+15005550006",
            },
            "authToken",
        ),
        "SLACK": ({"botToken": "xoxb-secret"}, "botToken"),
        "SENDGRID": ({"apiKey": "SG.secret", "fromEmail": "n@acme.test"}, "apiKey"),
    }
    for provider_type, (credentials, secret_field) in secrets.items():
        answer = await ok_rpc(
            tenant,
            "manage/configure-provider",
            {"providerType": provider_type, "credentials": credentials},
        )
        assert answer["provider"]["credentials"][secret_field] == "********"
    await ok_rpc(
        tenant, "manage/configure-provider", {"providerType": "DISCORD", "credentials": {}}
    )
    listed = await tenant.client.post(
        "/api/v1/notifications/manage/get-providers", json={"includeInactive": True}
    )
    text = listed.text
    assert sorted(p["providerType"] for p in listed.json()["providers"]) == sorted(
        [*secrets, "DISCORD"]
    )
    for credentials, secret_field in secrets.values():
        assert str(credentials[secret_field]) not in text
    assert "BEGIN PRIVATE KEY" not in text


async def test_openapi_lists_the_provider_types(tenant: Tenant) -> None:
    response = await tenant.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["components"]["schemas"]["ProviderType"]["enum"] == [
        "FCM",
        "APNS",
        "SENDGRID",
        "SES",
        "TWILIO",
        "SLACK",
        "DISCORD",
        "NOVU",  # our extension: a Novu instance as a route (docs/novu.md)
    ]
    get_providers = document["paths"]["/api/v1/notifications/manage/get-providers"]["post"]
    assert "active" in get_providers["summary"].lower()
    assert "includeInactive" in get_providers["summary"]


async def test_a_stored_config_that_no_longer_validates_fails_over_per_send(
    system: System, settings: Settings, tenant: Tenant, sendgrid: FakeSendGrid
) -> None:
    # A config as an older build might have stored it: no fromEmail. It must not break the
    # worker; each send reports it and the backup delivers.
    assert system.db is not None
    await system.db.providers.upsert(
        tenant_id=tenant.tenant_id,
        environment="development",
        provider_id="sg-old",
        fields={
            "provider_type": "SENDGRID",
            "channel": "email",
            "active": True,
            "priority": 0,
            "endpoint": sendgrid.url,
            "credentials_enc": CredentialCipher(settings.secret_key).encrypt({"apiKey": "SG.x"}),
            "credential_fields": ["apiKey"],
        },
    )
    await configure_sendgrid(
        tenant, sendgrid.url, DEFAULT_API_KEY, providerId="sg-backup", priority=1
    )
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "EMAIL", "content": {"title": "T", "body": "x"}},
    )
    status = await wait_final_status(tenant, sent["transactionId"])

    assert status["result"] == "DELIVERED"
    first, *_, last = status["attempts"]
    assert (first["provider"], first["outcome"], first["reason"]) == (
        "sg-old",
        "PROVIDER_AUTH",
        "invalid_credentials",
    )
    assert first["detail"] == "credentials.fromEmail is required for SENDGRID"
    assert (last["provider"], last["outcome"]) == ("sg-backup", "DELIVERED")
    assert len(sendgrid.mails) == 1

    listed = await ok_rpc(tenant, "manage/get-providers", {})
    old = next(p for p in listed["providers"] if p["providerId"] == "sg-old")
    assert old["credentials"] == {"apiKey": "********"}
