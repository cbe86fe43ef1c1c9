"""The fan-out worker under faults: killed (`kill -9`) mid-way through a topic send, right after
a batch was stored and published and before its cursor moved past it; a fresh worker then
finishes the fan-out. Counted at the provider's fake: every subscriber got exactly one mail.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.faults.harness import ProcessSystem
from tests.faults.steps import TENANT, provider_calls, wait_all_delivered
from tests.support import wait_for

pytestmark = pytest.mark.timeout(240)

M = "/api/v1/notifications/manage"
SUBSCRIBERS = 120
BATCH = 20
DIE_AFTER = 3  # batches stored and published by the doomed worker; the cursor is at batch 2


async def _ok(client: httpx.AsyncClient, name: str, body: dict[str, object]) -> dict[str, object]:
    response = await client.post(f"{M}/{name}", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


async def _topic_of_mail_users(client: httpx.AsyncClient, sendgrid: FakeSendGrid) -> list[str]:
    await _ok(
        client,
        "configure-provider",
        {
            "providerType": "SENDGRID",
            "credentials": {"apiKey": DEFAULT_API_KEY, "fromEmail": "noreply@acme.test"},
            "endpoint": sendgrid.url,
        },
    )
    users = [f"u{i:03d}" for i in range(SUBSCRIBERS)]
    for user in users:
        await _ok(
            client,
            "create-subscriber",
            {"userId": user, "subscriberData": {"email": f"{user}@x.io"}},
        )
    await _ok(client, "create-topic", {"topicKey": "news"})
    for start in range(0, len(users), 100):
        await _ok(
            client,
            "add-subscribers-to-topic",
            {"topicKey": "news", "subscriberIds": users[start : start + 100]},
        )
    return users


async def test_fanout_worker_killed_mid_way_resumes_with_each_subscriber_sent_once(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """The fan-out worker is killed (kill -9) after a batch was published, before its cursor."""
    system = make_system(NOTIFY_FANOUT_BATCH=str(BATCH), NOTIFY_FANOUT_LEASE_S="30")
    system.start_worker("email")
    await system.start_api()
    doomed = system.start(
        "worker-fanout-failpoint", "tests.faults.failpoint_fanout", str(DIE_AFTER)
    )
    async with system.client() as client, system.open_database() as db:
        users = await _topic_of_mail_users(client, sendgrid)
        sent = await _ok(
            client,
            "send-to-topic",
            {
                "topicKey": "news",
                "channel": "EMAIL",
                "category": "PRODUCT",
                "content": {"title": "Weekly", "body": "Your weekly summary"},
                "excludeUserIds": ["u007"],
            },
        )
        txn = str(sent["transactionId"])
        assert await doomed.wait_exit(30) == -signal.SIGKILL
        fanout = await db.fanouts.get(tenant_id=TENANT, fanout_id=txn)
        assert fanout is not None
        assert fanout["state"] == "RUNNING"  # died holding a live lease (30 s)
        assert fanout["batches"] == DIE_AFTER - 1  # the cursor never passed the last batch
        stored_before = await db.notifications.col.count_documents({"transaction_id": txn})
        assert stored_before == DIE_AFTER * BATCH - 1  # u007 excluded in the first batch

        # The unacked message goes back to the queue; a fresh worker takes it over at once
        # (it was redelivered: its consumer died), from the cursor.
        system.start_worker("fanout")

        async def done() -> bool:
            doc = await db.fanouts.get(tenant_id=TENANT, fanout_id=txn)
            return doc is not None and doc["state"] == "DONE"

        await wait_for(done, timeout_s=60, what="the fan-out to finish")
        records = [d async for d in db.notifications.col.find({"transaction_id": txn})]
        expected = [u for u in users if u != "u007"]
        assert sorted(r["recipient"] for r in records) == expected  # each once, none skipped
        await wait_all_delivered(db, {r["_id"] for r in records}, timeout_s=90)
        await system.wait_queues_drained(timeout_s=60)
        calls = provider_calls(sendgrid)
        to = Counter(m["personalizations"][0]["to"][0]["email"] for m in sendgrid.mails)
        final = await db.fanouts.get(tenant_id=TENANT, fanout_id=txn)
        assert final is not None
        fault_report(
            requests=1,
            delivered=len(to),
            lost=len(expected) - len(to),
            duplicated=sum(n - 1 for n in to.values()),
            subscribers=SUBSCRIBERS,
            excluded=1,
            killed_after_batch=DIE_AFTER,
            stored_before_restart=stored_before,
            notifications=len(records),
            provider_calls=sum(calls.values()),
            claims=final.get("claims"),
        )
        assert sorted(calls.values()) == [1] * len(expected)
        assert set(calls) == {r["_id"] for r in records}
        assert to == Counter({f"{u}@x.io": 1 for u in expected})
        assert (final["recipients"], final["excluded"]) == (len(expected), 1)
