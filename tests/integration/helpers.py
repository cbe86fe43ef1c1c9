"""Shared steps of integration tests, through the public API only."""

from __future__ import annotations

import json
from typing import Any

import aio_pika
import httpx

from shared.domain import FINAL_STATUSES, Channel
from shared.messaging.topology import Topology
from tests.support import Tenant, wait_for

FINAL_RESULTS = {s.value for s in FINAL_STATUSES}


async def rpc(tenant: Tenant, name: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    """POST an RPC of seed 000 (`manage/...` or a user RPC)."""
    return await tenant.client.post(f"/api/v1/notifications/{name}", json=body, **kw)


async def ok_rpc(tenant: Tenant, name: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """An RPC that must answer 200; its JSON."""
    response = await rpc(tenant, name, body, **kw)
    assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
    data: dict[str, Any] = response.json()
    return data


async def wait_final_status(
    tenant: Tenant, transaction_id: str, *, timeout_s: float = 20
) -> dict[str, Any]:
    """Poll get-delivery-status until the result is final."""

    async def probe() -> dict[str, Any] | None:
        data = await ok_rpc(tenant, "manage/get-delivery-status", {"transactionId": transaction_id})
        return data if data["result"] in FINAL_RESULTS else None

    return await wait_for(
        probe, timeout_s=timeout_s, what=f"{transaction_id} to reach a final result"
    )


async def wait_notification(
    tenant: Tenant, notification_id: str, *, timeout_s: float = 20
) -> dict[str, Any]:
    """Poll GET /api/v1/notifications/{id} until its result is final."""

    async def probe() -> dict[str, Any] | None:
        response = await tenant.client.get(f"/api/v1/notifications/{notification_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data if data["result"] in FINAL_RESULTS else None

    return await wait_for(probe, timeout_s=timeout_s, what=f"{notification_id} to finish")


async def configure_sendgrid(tenant: Tenant, fake_url: str, api_key: str, **extra: Any) -> None:
    """Point the tenant's e-mail at a fake SendGrid."""
    await ok_rpc(
        tenant,
        "manage/configure-provider",
        {
            "providerType": "SENDGRID",
            "credentials": {
                "apiKey": api_key,
                "fromEmail": "noreply@acme.test",
                "fromName": "Acme",
            },
            "endpoint": fake_url,
            **extra,
        },
    )


async def configure_fcm(tenant: Tenant, fake_url: str, service_account_json: str) -> None:
    """Point the tenant's push at a fake FCM."""
    await ok_rpc(
        tenant,
        "manage/configure-provider",
        {
            "providerType": "FCM",
            "credentials": {"serviceAccountJson": service_account_json},
            "endpoint": fake_url,
        },
    )


async def configure(
    tenant: Tenant, provider_type: str, fake_url: str, credentials: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Point one of the tenant's providers at a fake; the stored config as answered."""
    answer = await ok_rpc(
        tenant,
        "manage/configure-provider",
        {
            "providerType": provider_type,
            "credentials": credentials,
            "endpoint": fake_url,
            **extra,
        },
    )
    provider: dict[str, Any] = answer["provider"]
    return provider


async def send_and_wait(
    tenant: Tenant, user_id: str, channel: str, *, timeout_s: float = 20, **content: Any
) -> dict[str, Any]:
    """manage/send one notification and wait for its final delivery status."""
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {
            "userId": user_id,
            "channel": channel,
            "content": {"title": "Hello", "body": "A notification", **content},
        },
    )
    return await wait_final_status(tenant, sent["transactionId"], timeout_s=timeout_s)


async def dead_letters(
    rabbitmq_url: str, topology: Topology, channel: Channel
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(headers, body) of every message in a channel's DLQ, left in place (browsed unacked)."""
    connection = await aio_pika.connect(rabbitmq_url)
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    async with connection:
        amqp_channel = await connection.channel()
        queue = await amqp_channel.declare_queue(topology.dlq(channel), passive=True)
        while (message := await queue.get(no_ack=False, fail=False, timeout=5)) is not None:
            found.append((dict(message.headers or {}), json.loads(message.body)))
        # Closing the channel with the messages unacked hands them all back to the queue.
    return found
