"""Nothing crosses tenants; scopes and the gateway headers are enforced."""

from __future__ import annotations

import secrets

import httpx

from shared.settings import Settings
from tests.integration.helpers import ok_rpc, rpc, wait_final_status
from tests.support import System, Tenant


async def test_a_tenant_cannot_read_anothers_data(system: System, tenant: Tenant) -> None:
    other = await system.new_tenant()
    try:
        await ok_rpc(
            tenant, "manage/create-subscriber", {"userId": "shared-id", "subscriberData": {}}
        )
        await ok_rpc(
            tenant,
            "manage/configure-provider",
            {
                "providerType": "SENDGRID",
                "credentials": {"apiKey": "SG.secret", "fromEmail": "a@b.co"},
            },
        )
        sent = await ok_rpc(
            tenant,
            "manage/send",
            {"userId": "shared-id", "channel": "IN_APP", "content": {"body": "private"}},
        )
        done = await wait_final_status(tenant, sent["transactionId"])
        assert done["result"] == "DELIVERED"

        assert (
            await rpc(other, "manage/get-subscriber", {"userId": "shared-id"})
        ).status_code == 404
        listed = await ok_rpc(other, "manage/list-subscribers", {"page": 1, "pageSize": 50})
        assert listed["subscribers"] == []
        assert listed["totalCount"] == 0
        assert (await ok_rpc(other, "manage/get-providers", {}))["providers"] == []
        status = await rpc(
            other, "manage/get-delivery-status", {"transactionId": sent["transactionId"]}
        )
        assert status.status_code == 404
        assert system.db is not None
        record = (
            await system.db.notifications.find_by_transaction(
                tenant_id=tenant.tenant_id, transaction_id=sent["transactionId"]
            )
        )[0]
        assert (await other.client.get(f"/api/v1/notifications/{record.id}")).status_code == 404
        # The same user id in the other tenant is a different subscriber.
        await ok_rpc(
            other, "manage/create-subscriber", {"userId": "shared-id", "subscriberData": {}}
        )
        mine = await ok_rpc(tenant, "manage/list-subscribers", {})
        assert mine["totalCount"] == 1
    finally:
        await other.client.aclose()


async def test_tenant_header_must_match_the_key(tenant: Tenant) -> None:
    response = await rpc(
        tenant,
        "get-registered-channels",
        {},
        headers={"X-User-ID": "u", "X-Tenant-ID": "someone-else"},
    )
    assert response.status_code == 403
    assert response.json()["success"] is False


async def test_manage_needs_an_admin_key(system: System) -> None:
    sender = await system.new_tenant(scopes=("send",))
    try:
        response = await rpc(sender, "manage/list-subscribers", {})
        assert response.status_code == 403
        assert response.json()["error"] == [
            "this operation needs an API key with the admin or read scope"
        ]
    finally:
        await sender.client.aclose()


async def test_gateway_headers_alone_are_refused_unless_gateway_mode(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        response = await client.post(
            "/api/v1/notifications/get-registered-channels",
            json={},
            headers={"X-User-ID": "u", "X-Tenant-ID": "t"},
        )
    assert response.status_code == 401


async def test_user_rpcs_need_a_user(tenant: Tenant) -> None:
    response = await rpc(tenant, "get-registered-channels", {})
    assert response.status_code == 400
    assert response.json()["error"] == ["X-User-ID header is required for this operation"]


async def test_gateway_mode_trusts_an_asserted_admin_role_for_manage(settings: Settings) -> None:
    sut = System(settings.model_copy(update={"gateway_mode": True}))
    try:
        await sut.start([])
        tenant_id = f"gw-{secrets.token_hex(4)}"
        user = {"X-User-ID": "ops-1", "X-Tenant-ID": tenant_id}
        async with httpx.AsyncClient(base_url=sut.base_url) as client:

            async def call(path: str, **headers: str) -> httpx.Response:
                return await client.post(
                    f"/api/v1/notifications/{path}", json={}, headers={**user, **headers}
                )

            assert (await call("get-registered-channels")).status_code == 200
            refused = await call("manage/list-subscribers")
            assert refused.status_code == 403
            assert (
                await call("manage/list-subscribers", **{"X-User-Roles": "viewer"})
            ).status_code == 403
            allowed = await call("manage/list-subscribers", **{"X-User-Roles": "viewer, Admin"})
            assert allowed.status_code == 200
            assert allowed.json()["totalCount"] == 0  # the gateway's tenant, nobody else's
            # The role header means nothing outside gateway mode (see the test above): there,
            # gateway headers alone are a 401.
    finally:
        await sut.stop()
