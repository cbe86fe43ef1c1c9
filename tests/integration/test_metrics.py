"""Prometheus metrics: the API's /metrics (requests by route template, deliveries, queues)
and a worker's own port; the dashboard's stats endpoint from the same sends."""

from __future__ import annotations

import asyncio
import re

import httpx
import psutil

from shared.domain import Channel
from shared.settings import Settings
from tests.integration.api_processes import api_processes
from tests.integration.helpers import ok_rpc, wait_final_status
from tests.support import System, Tenant, free_port
from workers.process import WorkerProcess


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent): every given label must match."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


async def _metrics(system: System) -> str:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def _send_in_app(tenant: Tenant, user: str) -> str:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user, "subscriberData": {}})
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": user, "channel": "IN_APP", "content": {"title": "hi", "body": "there"}},
    )
    transaction_id: str = sent["transactionId"]
    assert (await wait_final_status(tenant, transaction_id))["result"] == "DELIVERED"
    return transaction_id


async def test_metrics_count_requests_and_deliveries(system: System, tenant: Tenant) -> None:
    before = await _metrics(system)
    labels = {"channel": "in_app", "provider": "in_app", "result": "DELIVERED"}
    delivered_before = sample(before, "notify_deliveries_total", **labels)
    created_before = sample(
        before, "notify_notifications_created_total", channel="in_app", source="manage.send"
    )
    await _send_in_app(tenant, "metrics-user")
    after = await _metrics(system)
    assert sample(after, "notify_deliveries_total", **labels) == delivered_before + 1
    assert (
        sample(after, "notify_notifications_created_total", channel="in_app", source="manage.send")
        == created_before + 1
    )
    route = "/api/v1/notifications/manage/send"
    assert sample(after, "notify_http_requests_total", route=route, status="200") >= 1
    assert sample(after, "notify_http_request_duration_seconds_count", route=route) >= 1
    # Raw paths never become labels: an unknown id is counted under its route template.
    await tenant.client.get("/api/v1/notifications/ntf_does_not_exist")
    templated = await _metrics(system)
    assert "ntf_does_not_exist" not in templated
    assert (
        sample(
            templated,
            "notify_http_requests_total",
            route="/api/v1/notifications/{notification_id}",
            status="404",
        )
        >= 1
    )
    queue = f"{system.settings.prefix}.in_app.queue"
    assert f'notify_queue_consumers{{kind="channel",queue="{queue}"}}' in templated
    assert sample(templated, "notify_queue_consumers", queue=queue) >= 1
    assert sample(templated, "notify_message_handling_seconds_count", queue=queue) >= 1
    assert sample(templated, "notify_provider_call_duration_seconds_count", provider="in_app") >= 1


async def test_a_worker_serves_metrics_on_its_own_port(settings: Settings) -> None:
    port = free_port()
    worker = WorkerProcess(settings.model_copy(update={"metrics_port": port}), Channel.EMAIL.value)
    await worker.start()
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert "notify_messages_handled_total" in response.text
        assert "process_cpu_seconds_total" in response.text
    finally:
        await worker.stop(timeout_s=5)
    async with httpx.AsyncClient() as client:
        try:
            await client.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            stopped = False
        except httpx.TransportError:
            stopped = True
    assert stopped, "the metrics port must close with the worker"


async def test_dashboard_stats_show_the_tenants_sends(system: System, tenant: Tenant) -> None:
    await _send_in_app(tenant, "stats-user")
    stats = await ok_rpc(tenant, "manage/get-dashboard-stats", {})
    in_app = stats["channels"]["IN_APP"]
    assert sum(in_app["created"]) == 1
    assert sum(in_app["results"]["DELIVERED"]) == 1
    assert in_app["totals"] == {"DELIVERED": 1}
    assert sum(stats["channels"]["EMAIL"]["created"]) == 0
    assert len(stats["minutes"]) == 60
    assert [p["provider"] for p in stats["providers"]] == ["IN_APP"]
    assert stats["queues"] is None  # broker figures count every tenant: operator only
    operator = await system.new_tenant_with_id(system.settings.operator_tenant)
    try:
        seen = await ok_rpc(operator, "manage/get-dashboard-stats", {})
        queues = {q["queue"]: q for q in seen["queues"]}
        assert queues[f"{system.settings.prefix}.in_app.queue"]["consumers"] >= 1
        assert queues[f"{system.settings.prefix}.email.dlq"]["kind"] == "dlq"
    finally:
        await operator.client.aclose()


async def test_several_api_processes_answer_for_all_of_them(
    tenant: Tenant, settings: Settings
) -> None:
    route = "/api/v1/notifications/manage/list-templates"
    env = {"NOTIFY_API_PROCESSES": "2"}
    async with (
        api_processes(settings, 1, env=env) as (api,),
        httpx.AsyncClient(
            base_url=api.base_url, headers={"Authorization": f"Bearer {tenant.api_key}"}
        ) as client,
    ):
        # Concurrent requests on new connections, so both of uvicorn's processes take some.
        responses = await asyncio.gather(
            *(client.post(route, json={}, headers={"Connection": "close"}) for _ in range(60))
        )
        assert {r.status_code for r in responses} == {200}
        texts = await asyncio.gather(
            *(client.get("/metrics", headers={"Connection": "close"}) for _ in range(6))
        )
        children = psutil.Process(api.popen.pid).children()
    assert len(children) >= 2, "uvicorn runs two API processes"
    for text in texts:
        assert sample(text.text, "notify_http_requests_total", route=route, status="200") == 60
        # The aggregated registry (files of every process), not one process's own: that one
        # would also hold this process's `process_*` metrics. The kernel may hand one process
        # most connections, so equal counts alone would not prove the aggregation.
        assert "process_cpu_seconds_total" not in text.text
