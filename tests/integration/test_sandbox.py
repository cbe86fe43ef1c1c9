"""Dev mode: a tenant without a provider delivers to the sandbox, listed at GET /dev/outbox."""

from __future__ import annotations

import secrets

from shared.domain import Channel
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.integration.helpers import ok_rpc, wait_final_status
from tests.support import System, delete_broker_objects


async def test_sandbox_records_what_it_sends(settings: Settings) -> None:
    # Its own prefix: the session's workers (sandbox off) must not take these messages.
    dev = settings.model_copy(
        update={"sandbox_default": True, "prefix": f"t{secrets.token_hex(5)}"}
    )
    sut = System(dev)
    try:
        await sut.start([Channel.EMAIL])
        tenant = await sut.new_tenant()
        await ok_rpc(
            tenant,
            "manage/create-subscriber",
            {"userId": "u1", "subscriberData": {"email": "u1@x.io"}},
        )
        sent = await ok_rpc(
            tenant,
            "manage/send",
            {
                "userId": "u1",
                "channel": "EMAIL",
                "content": {"subject": "Hello", "body": "From the sandbox"},
            },
        )
        status = await wait_final_status(tenant, sent["transactionId"])
        assert status["result"] == "DELIVERED"
        outbox = await tenant.client.get("/dev/outbox")
        assert outbox.status_code == 200
        [message] = outbox.json()["messages"]
        assert (message["to"], message["subject"], message["body"]) == (
            "u1@x.io",
            "Hello",
            "From the sandbox",
        )
        assert message["id"] == status["providerMessageId"]
        other = await sut.new_tenant()
        assert (await other.client.get("/dev/outbox")).json()["messages"] == []
        await other.client.aclose()
        await tenant.client.aclose()
    finally:
        await sut.stop()
        await delete_broker_objects(dev.rabbitmq_url, Topology(dev.prefix))


async def test_dev_endpoints_are_off_unless_enabled(settings: Settings) -> None:
    prod_like = settings.model_copy(update={"dev_endpoints": False})
    sut = System(prod_like)
    try:
        await sut.start([])
        tenant = await sut.new_tenant()
        assert (await tenant.client.get("/dev/outbox")).status_code == 404
        await tenant.client.aclose()
    finally:
        await sut.stop()
