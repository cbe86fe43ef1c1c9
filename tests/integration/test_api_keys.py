"""API key RPCs: created once, listed without secrets, revoked, rotated with a grace period;
scopes from the access table; revocation reaching a second API process within seconds."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shared.settings import Settings
from tests.integration.api_processes import api_processes
from tests.integration.helpers import ok_rpc, rpc
from tests.support import System, Tenant, wait_for


async def _create(tenant: Tenant, **body: Any) -> dict[str, Any]:
    return await ok_rpc(tenant, "manage/create-api-key", {"name": "k", **body})


def _client(base_url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


async def test_a_key_is_shown_once_and_listed_by_prefix(tenant: Tenant) -> None:
    made = await _create(tenant, name="billing backend", scopes=["send"], environment="production")
    key = made["apiKey"]
    assert key.startswith("nk_")
    assert len(key) > 40
    assert made["key"]["prefix"] == key[:10]
    shown = made["key"]
    assert shown["keyId"].startswith("key_")
    assert (shown["name"], shown["scopes"], shown["environment"], shown["status"]) == (
        "billing backend",
        ["send"],
        "production",
        "active",
    )
    listed = await ok_rpc(tenant, "manage/list-api-keys", {})
    text = str(listed)
    assert key not in text
    assert "key_hash" not in text
    assert made["key"]["keyId"] in [k["keyId"] for k in listed["keys"]]


async def test_bad_key_requests_name_the_field(tenant: Tenant) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "k", "scopes": []}, "scopes must contain at least 1 items"),
        ({"name": "k", "scopes": ["root"]}, "scopes[0] must be one of the following values"),
        ({"name": "k", "scopes": ["read"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"name": "k", "scopes": ["read"], "rateLimit": 0}, "rateLimit must not be less than 1"),
        ({"name": "k", "scopes": ["read"], "environment": "staging"}, "environment must be one"),
    ]
    before = len((await ok_rpc(tenant, "manage/list-api-keys", {}))["keys"])
    for body, message in cases:
        response = await rpc(tenant, "manage/create-api-key", body)
        assert response.status_code == 400, body
        assert any(message in e for e in response.json()["error"]), response.json()
    assert len((await ok_rpc(tenant, "manage/list-api-keys", {}))["keys"]) == before


async def test_scopes_follow_the_access_table(system: System, tenant: Tenant) -> None:
    sender = (await _create(tenant, scopes=["send"]))["apiKey"]
    reader = (await _create(tenant, scopes=["read"]))["apiKey"]
    send_body = {
        "userId": "u1",
        "channel": "IN_APP",
        "content": {"title": "t", "body": "b"},
    }
    expectations = [
        # (key, rpc, body, status)
        (sender, "manage/send", send_body, 200),
        (sender, "manage/list-subscribers", {}, 403),
        (sender, "manage/create-api-key", {"name": "x", "scopes": ["admin"]}, 403),
        (sender, "manage/get-delivery-status", {"transactionId": "txn_none"}, 404),
        (reader, "manage/list-subscribers", {}, 200),
        (reader, "manage/get-subscriber", {"userId": "nobody"}, 404),
        (reader, "manage/get-delivery-status", {"transactionId": "txn_none"}, 404),
        (reader, "manage/create-subscriber", {"userId": "u2", "subscriberData": {}}, 403),
        (reader, "manage/send", send_body, 403),
        (reader, "manage/list-api-keys", {}, 403),
        (reader, "manage/get-providers", {}, 403),
        (reader, "manage/replay-dead-letters", {"all": True, "dryRun": True}, 403),
    ]
    for key, name, body, status in expectations:
        async with _client(system.base_url, key) as client:
            response = await client.post(f"/api/v1/notifications/{name}", json=body)
        assert response.status_code == status, (name, response.text)
        if status == 403:
            assert "scope" in response.json()["error"][0]
    async with _client(system.base_url, reader) as client:
        assert (await client.get("/api/v1/notifications/req-none")).status_code == 404
        seed003 = await client.post("/api/v1/notifications", json={})
        assert seed003.status_code == 403


async def test_a_revoked_key_is_refused_and_revoking_is_tenant_bound(
    system: System, tenant: Tenant
) -> None:
    made = await _create(tenant, scopes=["read"])
    other = await system.new_tenant()
    try:
        # Another tenant cannot revoke (or even see) it.
        refused = await rpc(other, "manage/revoke-api-key", {"keyId": made["key"]["keyId"]})
        assert refused.status_code == 404
        async with _client(system.base_url, made["apiKey"]) as client:
            assert (
                await client.post("/api/v1/notifications/manage/list-templates", json={})
            ).status_code == 200
        revoked = await ok_rpc(tenant, "manage/revoke-api-key", {"keyId": made["key"]["keyId"]})
        assert revoked["key"]["status"] == "revoked"
        async with _client(system.base_url, made["apiKey"]) as client:

            async def refused_now() -> bool:
                r = await client.post("/api/v1/notifications/manage/list-templates", json={})
                return r.status_code == 401

            await wait_for(refused_now, timeout_s=system.settings.api_key_cache_s + 3)
        listed = await ok_rpc(tenant, "manage/list-api-keys", {})
        assert made["key"]["keyId"] not in [k["keyId"] for k in listed["keys"]]
        everything = await ok_rpc(tenant, "manage/list-api-keys", {"includeInactive": True})
        assert made["key"]["keyId"] in [k["keyId"] for k in everything["keys"]]
    finally:
        await other.client.aclose()


async def test_rotation_keeps_the_old_key_for_the_grace_period(
    system: System, tenant: Tenant
) -> None:
    made = await _create(tenant, name="ci", scopes=["read", "send"], rateLimit=500)
    rotated = await ok_rpc(
        tenant,
        "manage/rotate-api-key",
        {"keyId": made["key"]["keyId"], "gracePeriodSeconds": 2},
    )
    assert rotated["apiKey"] != made["apiKey"]
    assert rotated["key"]["scopes"] == ["read", "send"]
    assert rotated["key"]["rateLimit"] == 500
    assert rotated["key"]["rotatedFrom"] == made["key"]["keyId"]
    assert rotated["previous"]["rotatedTo"] == rotated["key"]["keyId"]
    path = "/api/v1/notifications/manage/list-templates"
    async with (
        _client(system.base_url, made["apiKey"]) as old,
        _client(system.base_url, rotated["apiKey"]) as new,
    ):
        assert (await old.post(path, json={})).status_code == 200  # within the grace period
        assert (await new.post(path, json={})).status_code == 200

        async def old_refused() -> bool:
            return (await old.post(path, json={})).status_code == 401

        await wait_for(old_refused, timeout_s=10, what="the old key to expire")
        assert (await new.post(path, json={})).status_code == 200
    again = await rpc(tenant, "manage/rotate-api-key", {"keyId": made["key"]["keyId"]})
    assert again.status_code == 404  # an expired key has no successor to make


async def test_revocation_reaches_every_api_process_within_seconds(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    made = await _create(tenant, scopes=["read"])
    path = "/api/v1/notifications/manage/list-templates"
    async with api_processes(settings, 2) as (first, second):
        clients = [_client(p.base_url, made["apiKey"]) for p in (first, second)]
        try:
            for client in clients:  # each process has read the key and caches it
                assert (await client.post(path, json={})).status_code == 200
            async with _client(first.base_url, tenant.api_key) as admin:
                response = await admin.post(
                    "/api/v1/notifications/manage/revoke-api-key",
                    json={"keyId": made["key"]["keyId"]},
                )
                assert response.status_code == 200
            revoked_at = time.monotonic()
            for client in clients:

                async def refused(client: httpx.AsyncClient = client) -> bool:
                    return (await client.post(path, json={})).status_code == 401

                await wait_for(refused, timeout_s=10, what="the revoked key to be refused")
            took = time.monotonic() - revoked_at
            assert took <= settings.api_key_cache_s + 2.5, took
        finally:
            for client in clients:
                await client.aclose()


async def test_user_rpcs_refuse_unknown_credentials_in_the_routes_own_check(
    system: System,
) -> None:
    async with _client(system.base_url, "nk_not_a_key") as client:
        response = await client.post(
            "/api/v1/notifications/get-registered-channels",
            json={},
            headers={"X-User-ID": "u1"},
        )
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid or missing authentication token"
