"""Steps the fault tests share: set a system up, and count what happened."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from shared.db.base import Doc
from shared.db.client import Database
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.support import wait_for

SEND = "/api/v1/notifications/manage/send"
TENANT = "default"  # the bootstrap key's tenant


async def setup_email(client: httpx.AsyncClient, sendgrid: FakeSendGrid) -> None:
    """SendGrid pointed at the fake, and subscriber u1 with an address."""
    for name, body in (
        (
            "manage/configure-provider",
            {
                "providerType": "SENDGRID",
                "credentials": {"apiKey": DEFAULT_API_KEY, "fromEmail": "noreply@acme.test"},
                "endpoint": sendgrid.url,
            },
        ),
        ("manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}),
    ):
        response = await client.post(f"/api/v1/notifications/{name}", json=body)
        assert response.status_code == 200, response.text


def email_body(label: str) -> dict[str, Any]:
    """A `manage/send` body for u1."""
    return {"userId": "u1", "channel": "EMAIL", "content": {"title": label, "body": label}}


def provider_calls(sendgrid: FakeSendGrid) -> Counter[str]:
    """Requests the fake received, per notification id (from SendGrid's custom_args)."""
    calls: Counter[str] = Counter()
    for request in sendgrid.requests:
        try:
            calls[request.json()["custom_args"]["notification_id"]] += 1
        except (ValueError, KeyError, TypeError):
            calls["?"] += 1
    return calls


def accepted_mails(sendgrid: FakeSendGrid) -> Counter[str]:
    """Mails the fake accepted, per notification id."""
    return Counter(m["custom_args"]["notification_id"] for m in sendgrid.mails)


def delivered_labels(sendgrid: FakeSendGrid) -> Counter[str]:
    """Mails the fake accepted, per subject: the label each request was sent with."""
    return Counter(str(m.get("subject")) for m in sendgrid.mails)


async def all_records(db: Database) -> list[Doc]:
    """Every notification record of the bootstrap tenant."""
    return [d async for d in db.notifications.col.find({"tenant_id": TENANT})]


async def wait_all_delivered(db: Database, ids: set[str], *, timeout_s: float) -> list[Doc]:
    """Until every record in `ids` is DELIVERED; their records."""

    async def delivered() -> list[Doc] | None:
        docs = [d async for d in db.notifications.col.find({"_id": {"$in": sorted(ids)}})]
        done = [d for d in docs if d["status"] == "DELIVERED"]
        return docs if len(done) == len(ids) else None

    return await wait_for(delivered, timeout_s=timeout_s, what=f"{len(ids)} records DELIVERED")


async def status_counts(db: Database) -> Counter[str]:
    """Records of the bootstrap tenant per status."""
    return Counter(d["status"] for d in await all_records(db))


async def sends_held_at_the_provider(
    client: httpx.AsyncClient, sendgrid: FakeSendGrid, sends: int
) -> None:
    """Set e-mail up, hold the fake's answers, send `sends` (each 200), wait until all arrive."""
    await setup_email(client, sendgrid)
    sendgrid.hold()
    for i in range(sends):
        response = await client.post(SEND, json=email_body(f"m{i}"))
        assert response.status_code == 200, response.text
    await sendgrid.wait_for_requests(sends, timeout_s=15)
