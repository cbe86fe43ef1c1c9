"""Tenant isolation over every operation of the live OpenAPI document.

Tenant A gets one of everything (subscribers, a device, a template, a provider config,
notifications delivered and dead-lettered, an inbox item, an API key, a DLQ operation), its
content marked with a secret string. Then tenant B calls **every** operation with A's ids,
as an admin key, a send key, a read key and a user (B's key naming A's user): B never sees
A's secret, B's reads count nothing of A while B is empty, and A's documents and dead
letters are exactly as they were. Routes added later are called too (read from /openapi.json).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from api.access import access_for
from shared.settings import Settings
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.helpers import configure_sendgrid, ok_rpc, rpc, wait_final_status
from tests.integration.isolation_support import BodyMaker, Operation, operations
from tests.support import System, Tenant

# Numbers a reply may hold without counting anything (echoes of the request, paging).
NOT_COUNTS = {"page", "pageSize", "limit", "version", "priority", "rateLimit", "days"}


async def _seed_victim(a: Tenant, sendgrid: FakeSendGrid, secret: str, tag: str) -> dict[str, str]:
    """A's data, every piece carrying `secret`; A's ids (which carry `tag`)."""
    user, uuid_user = f"a-user-{tag}", str(uuid.uuid4())
    template = f"a_tpl_{tag}"
    await configure_sendgrid(a, sendgrid.url, DEFAULT_API_KEY, providerId="sendgrid")
    for user_id in (user, uuid_user):
        await ok_rpc(
            a,
            "manage/create-subscriber",
            {
                "userId": user_id,
                "subscriberData": {"firstName": secret, "email": f"{secret}@acme-a.com"},
            },
        )
    await ok_rpc(
        a,
        "register-push-device",
        {"fcmToken": f"device-token-{tag}", "platform": "ANDROID", "deviceId": tag},
        headers=a.user_headers(user),
    )
    await ok_rpc(
        a,
        "manage/create-template",
        {"templateCode": template, "channel": "EMAIL", "subject": secret, "body": secret},
    )
    delivered = await ok_rpc(
        a,
        "manage/send",
        {"userId": user, "channel": "IN_APP", "content": {"title": secret, "body": secret}},
    )
    request_id = f"req-{tag}"
    seed = await a.client.post(
        "/api/v1/notifications",
        json={
            "notification_type": "email",
            "user_id": uuid_user,
            "template_code": template,
            "variables": {},
            "request_id": request_id,
        },
    )
    assert seed.status_code == 200, seed.text
    sendgrid.script_error(400, f"rejected {secret}")
    failed = await ok_rpc(
        a,
        "manage/send",
        {"userId": user, "channel": "EMAIL", "content": {"title": secret, "body": secret}},
    )
    for transaction in (delivered["transactionId"], request_id, failed["transactionId"]):
        await wait_final_status(a, transaction)
    topic = f"a-topic-{tag}"
    created = await rpc(a, "manage/create-topic", {"topicKey": topic, "name": secret})
    assert created.status_code in (200, 409), created.text  # 409: seeded before
    await ok_rpc(a, "manage/add-subscribers-to-topic", {"topicKey": topic, "subscriberIds": [user]})
    letters = (await ok_rpc(a, "manage/list-dead-letters", {}))["deadLetters"]
    key = await ok_rpc(a, "manage/create-api-key", {"name": secret, "scopes": ["read"]})
    operation = await ok_rpc(a, "manage/replay-dead-letters", {"all": True, "dryRun": True})
    return {
        "user": user,
        "uuid_user": uuid_user,
        "template": template,
        "transaction": failed["transactionId"],
        "notification": letters[0]["notificationId"],
        "request": request_id,
        "key": key["key"]["keyId"],
        "provider": "sendgrid",
        "device": f"device-token-{tag}",
        "operation": operation["operationId"],
        "topic": topic,
    }


async def _snapshot(system: System, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every document of the tenant, in every collection."""
    assert system.db is not None
    db = system.db.db
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(await db.list_collection_names()):
        docs = [d async for d in db[name].find({"tenant_id": tenant_id}).sort("_id", 1)]
        if docs:
            out[name] = docs
    return out


def _counts(value: Any, key: str = "") -> list[str]:
    """Paths of numbers other than 0 (paging and request echoes aside)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [key] if value != 0 and key not in NOT_COUNTS else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _counts(v, k)]
    if isinstance(value, list):
        return [p for v in value for p in _counts(v, key)]
    return []


async def _call(
    client: httpx.AsyncClient, op: Operation, maker: BodyMaker, *, full: bool, **kw: Any
) -> httpx.Response:
    body = maker.body(op, full=full)
    return await client.request(op.method.upper(), maker.path(op), json=body, **kw)


@pytest.mark.timeout(300)
async def test_no_rpc_lets_tenant_b_read_change_or_count_tenant_a(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid, settings: Settings
) -> None:
    secret, tag = f"secret{secrets.token_hex(6)}", secrets.token_hex(4)
    ids = await _seed_victim(tenant, sendgrid, secret, tag)
    before = await _snapshot(system, tenant.tenant_id)
    letters_before = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert letters_before["count"] == 1

    b = await system.new_tenant()
    keys: dict[str, str] = {"admin": b.api_key}
    assert system.db is not None
    for scope in ("send", "read"):
        keys[scope] = f"nk_test_{secrets.token_urlsafe(16)}"
        await system.db.api_keys.ensure(
            key=keys[scope], tenant_id=b.tenant_id, scopes=[scope], name=scope
        )
    async with httpx.AsyncClient(base_url=system.base_url) as probe:
        document = (await probe.get("/openapi.json")).json()
    maker = BodyMaker(document, ids)
    ops = operations(document)
    assert len(ops) >= 40, "the document lists every operation"
    leaks: list[str] = []
    calls = 0

    def client(identity: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=system.base_url,
            headers={"Authorization": f"Bearer {keys[identity]}"},
            timeout=20,
        )

    def judge(op: Operation, who: str, response: httpx.Response, *, empty_b: bool) -> None:
        nonlocal calls
        calls += 1
        where = f"{op.name} as {who} → {response.status_code}"
        if response.status_code >= 500:
            leaks.append(f"{where}: server error {response.text[:200]}")
        if secret in response.text:
            leaks.append(f"{where}: A's data in the answer: {response.text[:300]}")
        if empty_b and response.is_success and "json" in response.headers.get("content-type", ""):
            counted = _counts(response.json())
            if counted:
                leaks.append(f"{where}: B has nothing, yet it counts {counted}")

    # 1. B is empty: its reads must count nothing (A's data is in the same collections/DLQs).
    for op in ops:
        if "read" not in access_for(method=op.method.upper(), path=op.path).scopes:
            continue
        for who in ("read", "admin"):
            async with client(who) as c:
                for full in (True, False):
                    judge(op, who, await _call(c, op, maker, full=full), empty_b=True)
    # 2. Every operation with A's ids, as each of B's identities.
    for op in ops:
        for who in ("admin", "send", "read", "user"):
            async with client("admin" if who == "user" else who) as c:
                extra = {"headers": b.user_headers(ids["user"])} if who == "user" else {}
                for full in (True, False):
                    judge(op, who, await _call(c, op, maker, full=full, **extra), empty_b=False)
    async with client("admin") as c:
        by_request = await c.get(f"/api/v1/notifications/{ids['request']}")
        assert by_request.status_code == 404
    await b.client.aclose()

    assert leaks == [], "\n".join(leaks)
    assert calls > 8 * len(ops)
    after = await _snapshot(system, tenant.tenant_id)
    assert after.keys() == before.keys()
    for collection in before:
        assert after[collection] == before[collection], f"B changed A's {collection}"
    letters_after = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert [x["notificationId"] for x in letters_after["deadLetters"]] == [
        x["notificationId"] for x in letters_before["deadLetters"]
    ]
    still = await rpc(tenant, "manage/get-subscriber", {"userId": ids["user"]})
    assert still.status_code == 200
