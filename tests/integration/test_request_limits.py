"""Request limits: per-key rate limits exact across two API processes (429, Retry-After and
the IETF RateLimit headers on every keyed response), 413 for a body over the size limit, 400
for data the database cannot store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from api.ratelimit import RateLimiter
from shared.settings import Settings
from tests.integration.api_processes import api_processes
from tests.integration.helpers import ok_rpc
from tests.support import System, Tenant

WINDOW_S = 3600
PATH = "/api/v1/notifications/manage/list-templates"


async def _keep_clear_of_a_window_edge(window_s: int, margin_s: float = 20) -> None:
    left = window_s - time.time() % window_s
    if left < margin_s:
        await asyncio.sleep(left + 0.5)


def _policy(response: httpx.Response) -> str:
    return response.headers["RateLimit-Policy"]


async def test_limit_holds_exactly_across_two_api_processes(
    tenant: Tenant, settings: Settings
) -> None:
    limit = 40
    made = await ok_rpc(
        tenant, "manage/create-api-key", {"name": "limited", "scopes": ["read"], "rateLimit": limit}
    )
    env = {"NOTIFY_RATE_LIMIT_WINDOW_S": str(WINDOW_S)}
    await _keep_clear_of_a_window_edge(WINDOW_S)
    async with api_processes(settings, 2, env=env) as procs:
        clients = [
            httpx.AsyncClient(
                base_url=p.base_url,
                headers={"Authorization": f"Bearer {made['apiKey']}"},
                timeout=10,
            )
            for p in procs
        ]
        try:
            responses: list[httpx.Response] = []
            for n in range(limit + 100):  # alternating processes, as a load balancer would
                responses.append(await clients[n % 2].post(PATH, json={}))
        finally:
            for client in clients:
                await client.aclose()
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) == limit
    assert len(refused) == 100
    assert {r.status_code for r in responses} == {200, 429}
    for response in refused:
        retry_after = int(response.headers["Retry-After"])
        assert 0 < retry_after <= WINDOW_S
        assert response.json()["message"] == "Too many requests"
        assert f"q={limit};w={WINDOW_S}" in _policy(response)
        assert response.headers["RateLimit"].startswith('"key";r=0;t=')
    first = ok[0]
    assert f"q={limit};w={WINDOW_S}" in _policy(first)
    remaining = int(first.headers["RateLimit"].split("r=")[1].split(";")[0])
    assert 0 < remaining < limit


async def test_every_keyed_response_carries_the_default_policy(
    system: System, tenant: Tenant
) -> None:
    s = system.settings
    response = await tenant.client.post(PATH, json={})
    assert response.status_code == 200
    assert _policy(response) == f'"default";q={s.rate_limit_requests};w={s.rate_limit_window_s}'
    missing = await tenant.client.post("/api/v1/notifications/manage/get-subscriber", json={})
    assert missing.status_code == 400
    assert "RateLimit" in missing.headers


async def test_leases_from_two_limiters_never_exceed_the_limit(
    system: System, tenant: Tenant
) -> None:
    assert system.db is not None
    limiters = [
        RateLimiter(repo=system.db.rate_limits, default_limit=10, window_s=WINDOW_S)
        for _ in range(2)
    ]
    await _keep_clear_of_a_window_edge(WINDOW_S)
    key_id = f"key_test{time.time_ns()}"
    decisions = await asyncio.gather(
        *(limiters[n % 2].take(key_id=key_id, limit=137) for n in range(400))
    )
    assert sum(d.allowed for d in decisions) == 137


async def test_a_body_over_the_limit_is_413_and_changes_nothing(
    system: System, tenant: Tenant
) -> None:
    limit = system.settings.max_body_bytes
    body: dict[str, Any] = {
        "userId": "big",
        "subscriberData": {"data": {"blob": "x" * (limit + 10)}},
    }
    response = await tenant.client.post("/api/v1/notifications/manage/create-subscriber", json=body)
    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "message": "Payload too large",
        "error": ["body must be at most 1 MiB"],
    }

    async def chunks() -> Any:
        yield b'{"userId": "big", "subscriberData": {"data": {"blob": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}}'

    chunked = await tenant.client.post(
        "/api/v1/notifications/manage/create-subscriber",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    missing = await tenant.client.post(
        "/api/v1/notifications/manage/get-subscriber", json={"userId": "big"}
    )
    assert missing.status_code == 404


async def test_data_the_database_cannot_store_is_a_400(tenant: Tenant) -> None:
    for data, rule in [
        ({"big": 2**70}, "a number is over 8 bytes"),
        ({"bad\u0000key": 1}, "NULL byte"),
    ]:
        response = await tenant.client.post(
            "/api/v1/notifications/manage/send",
            json={
                "userId": "u",
                "channel": "IN_APP",
                "content": {"title": "t", "body": "b", "data": data},
            },
        )
        assert response.status_code == 400, response.text
        assert rule in response.json()["error"][0]
