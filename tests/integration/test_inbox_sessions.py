"""Inbox session tokens: used directly by a browser, they reach their own inbox and no more."""

from __future__ import annotations

import time

import httpx
import jwt

from api.inbox.session import SessionTokens
from shared.settings import Settings
from tests.integration.helpers import ok_rpc
from tests.integration.inbox_support import bearer, send_in_app, session_for, session_rpc
from tests.support import System, Tenant

ALICE, BOB = "sess-alice", "sess-bob"


async def test_a_session_token_alone_serves_every_inbox_rpc_of_its_subscriber(
    system: System, tenant: Tenant
) -> None:
    await send_in_app(tenant, ALICE, title="for alice")
    await send_in_app(tenant, BOB, title="for bob")
    token = (await session_for(tenant, ALICE))["sessionToken"]

    async def call(name: str, body: dict[str, object]) -> dict[str, object]:
        response = await session_rpc(system.base_url, token, name, body)
        assert response.status_code == 200, (name, response.text)
        data: dict[str, object] = response.json()
        return data

    feed = await call("get-inbox-feed", {})
    messages = feed["messages"]
    assert isinstance(messages, list)
    assert [m["title"] for m in messages] == ["for alice"]
    message_id = messages[0]["messageId"]
    assert await call("get-inbox-unseen-count", {}) == {"unseenCount": 1, "unreadCount": 1}
    assert (await call("mark-inbox-message", {"messageId": message_id, "status": "READ"}))[
        "status"
    ] == "READ"
    assert await call("mark-all-inbox-messages", {"status": "UNREAD"}) == {"updatedCount": 1}
    assert await call("delete-inbox-message", {"messageId": message_id}) == {
        "messageId": message_id,
        "deleted": True,
    }
    # Bob's inbox was never touched.
    bob = await ok_rpc(tenant, "get-inbox-feed", {}, headers=tenant.user_headers(BOB))
    assert [(m["title"], m["status"]) for m in bob["messages"]] == [("for bob", "UNSEEN")]


async def test_a_session_token_cannot_reach_another_subscriber(
    system: System, tenant: Tenant
) -> None:
    await send_in_app(tenant, BOB, title="bob's")
    bob_message = (await ok_rpc(tenant, "get-inbox-feed", {}, headers=tenant.user_headers(BOB)))[
        "messages"
    ][0]["messageId"]
    token = (await session_for(tenant, ALICE))["sessionToken"]
    async with httpx.AsyncClient(base_url=system.base_url, timeout=15) as client:
        # Naming Bob (or another tenant) next to Alice's token is refused outright.
        for headers in (
            {"X-User-ID": BOB},
            {"X-User-ID": BOB, "X-Tenant-ID": tenant.tenant_id},
            {"X-Tenant-ID": "another-tenant"},
        ):
            response = await client.post(
                "/api/v1/notifications/get-inbox-feed", json={}, headers=bearer(token) | headers
            )
            assert response.status_code == 403, (headers, response.text)
        # Bob's message through Alice's token: not hers, so it does not exist.
        for name, body in (
            ("mark-inbox-message", {"messageId": bob_message, "status": "READ"}),
            ("delete-inbox-message", {"messageId": bob_message}),
        ):
            response = await client.post(
                f"/api/v1/notifications/{name}", json=body, headers=bearer(token)
            )
            assert response.status_code == 404, (name, response.text)
    bob = await ok_rpc(tenant, "get-inbox-feed", {}, headers=tenant.user_headers(BOB))
    assert [(m["messageId"], m["status"]) for m in bob["messages"]] == [(bob_message, "UNSEEN")]


async def test_a_session_token_is_not_an_api_key(system: System, tenant: Tenant) -> None:
    token = (await session_for(tenant, ALICE))["sessionToken"]
    async with httpx.AsyncClient(base_url=system.base_url, timeout=15) as client:
        refused = [
            ("POST", "/api/v1/notifications/manage/send"),
            ("POST", "/api/v1/notifications/manage/list-subscribers"),
            ("POST", "/api/v1/notifications/register-push-device"),
            ("POST", "/api/v1/notifications/get-registered-channels"),
            ("POST", "/api/v1/notifications/get-inbox-session"),  # no self-renewal
            ("GET", "/api/v1/notifications/ntf_x"),
            ("GET", "/dev/outbox"),
        ]
        for method, path in refused:
            response = await client.request(method, path, json={}, headers=bearer(token))
            assert response.status_code == 401, (path, response.text)


async def test_expired_forged_and_foreign_tokens_are_refused(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    tokens = SessionTokens.from_settings(settings)
    expired, _ = tokens.issue(
        tenant_id=tenant.tenant_id,
        subscriber_id=ALICE,
        environment="development",
        now=time.time() - 3600,
        ttl_s=60,
    )
    good, _ = tokens.issue(tenant_id=tenant.tenant_id, subscriber_id=ALICE, environment="d")
    head, payload, signature = good.split(".")
    forged_claims = jwt.decode(good, options={"verify_signature": False}) | {"sub": BOB}
    forged = jwt.encode(forged_claims, "not-the-key-" * 4, algorithm="HS256")
    other_secret, _ = SessionTokens(secret_key="another-deployment", ttl_s=60).issue(
        tenant_id=tenant.tenant_id, subscriber_id=ALICE, environment="development"
    )
    unsigned = jwt.encode(forged_claims, "", algorithm="none")
    cases = {
        expired: "session token expired",
        f"{head}.{payload}.{signature[::-1]}": "invalid session token",
        forged: "invalid session token",
        other_secret: "invalid session token",
        unsigned: "invalid session token",
    }
    for token, reason in cases.items():
        response = await session_rpc(system.base_url, token, "get-inbox-unseen-count", {})
        assert response.status_code == 401, (reason, response.text)
        assert response.json() == {"success": False, "message": "Unauthorized", "error": reason}
    # The good one works.
    assert (
        await session_rpc(system.base_url, good, "get-inbox-unseen-count", {})
    ).status_code == 200


async def test_the_session_carries_tenant_subscriber_and_expiry(
    tenant: Tenant, settings: Settings
) -> None:
    before = int(time.time())
    token = (await session_for(tenant, ALICE))["sessionToken"]
    session = SessionTokens.from_settings(settings).verify(token)
    assert (session.tenant_id, session.subscriber_id) == (tenant.tenant_id, ALICE)
    lifetime = settings.inbox_session_ttl_s
    assert before + lifetime <= session.expires_at <= int(time.time()) + lifetime
