"""The in-app channel end to end: manage/send → queue → worker → inbox item → DELIVERED."""

from __future__ import annotations

from tests.integration.helpers import ok_rpc, wait_final_status
from tests.support import System, Tenant


async def test_in_app_send_is_delivered_to_the_inbox(system: System, tenant: Tenant) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u-1", "subscriberData": {}})
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {
            "userId": "u-1",
            "channel": "IN_APP",
            "category": "TRANSACTIONAL",
            "content": {"title": "Hi", "body": "Welcome aboard", "data": {"screen": "home"}},
        },
    )
    status = await wait_final_status(tenant, sent["transactionId"])
    assert status["result"] == "DELIVERED"
    assert status["channel"] == "IN_APP"
    assert status["deliveredAt"] >= status["queuedAt"]
    assert system.db is not None
    items = await system.db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id="u-1")
    assert [(i["title"], i["body"], i["data"]) for i in items] == [
        ("Hi", "Welcome aboard", {"screen": "home"})
    ]
