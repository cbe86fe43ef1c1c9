"""RabbitMQ restarted while delayed sends and a digest window are parked in the delay levels.

The delay levels are durable quorum queues, so the parked messages survive the restart and
arrive on time; what the restart does lose is found by the sweeps. Either way every send is
delivered exactly once. Restarts the shared broker: run it alone
(`pytest tests/faults/test_time_broker_restart.py`), as for tests/faults/test_restarts.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem, run_command
from tests.faults.steps import TENANT, provider_calls, setup_email, wait_all_delivered
from tests.faults.test_restarts import _local_rabbitmq
from tests.faults.test_time_faults import DELAYED, DIGEST, delayed_mail, digest_event, post_ok
from tests.support import wait_for

pytestmark = pytest.mark.timeout(240)


async def test_rabbitmq_restart_while_messages_are_parked(
    rabbitmq_url: str,
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    _local_rabbitmq(rabbitmq_url)
    system = make_system()
    for role in ("email", "maintenance", "digest"):
        system.start_worker(role)
    await system.start_api()
    async with system.client(timeout_s=30) as client, system.open_database() as db:
        await setup_email(client, sendgrid)
        sends = 10
        for i in range(sends):
            await post_ok(client, DELAYED, delayed_mail(f"d{i}", delay_s=8 + i % 3))
        for i in range(3):
            await post_ok(client, DIGEST, digest_event(f"e{i}", window_s=8))
        try:
            await run_command("rabbitmqctl", "stop_app")
            await system.wait_api_sees_down("rabbitmq")
        finally:
            await run_command("rabbitmqctl", "start_app")

        async def digest_sent() -> bool:
            return await db.digests.col.count_documents({"tenant_id": TENANT, "state": "SENT"}) > 0

        await wait_for(digest_sent, timeout_s=60, what="the digest to be sent")
        records = [d async for d in db.notifications.col.find({"tenant_id": TENANT})]
        delivered = await wait_all_delivered(db, {d["_id"] for d in records}, timeout_s=60)
        await system.wait_queues_drained(timeout_s=60)
        calls = provider_calls(sendgrid)
        late_s = [
            (d["processing_at"] - d["deliver_at"]).total_seconds()
            for d in delivered
            if d.get("deliver_at")
        ]
        fault_report(
            parked=sends + 1,
            delivered=len(delivered),
            provider_calls=sum(calls.values()),
            swept=sum(1 for d in delivered if d.get("sweeps")),
            max_late_s=round(max(late_s), 2),
        )
        assert len(records) == sends + 1
        assert sorted(calls.values()) == [1] * (sends + 1)
