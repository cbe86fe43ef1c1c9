"""The dead-letter admin RPCs through the running API, workers and a fake SendGrid."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import aio_pika
import pytest

from shared.domain import Channel
from shared.messaging.topology import Topology
from shared.settings import Settings
from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.dead_letter_support import DeadLetterWriter, at
from tests.integration.helpers import configure_sendgrid, ok_rpc, rpc, wait_notification
from tests.records import stored_doc
from tests.support import System, TcpProxy, Tenant


async def test_a_replayed_dead_letter_is_delivered_by_the_running_worker(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid, dlq_writer: DeadLetterWriter
) -> None:
    record = await dlq_writer.put(
        tenant_id=tenant.tenant_id,
        recipient="u1",
        reason="provider_error",
        content={"subject": "Your invoice", "body": "It is attached."},
    )
    listed = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert [d["notificationId"] for d in listed["deadLetters"]] == [record["_id"]]
    row = listed["deadLetters"][0]
    assert row["transactionId"] == record["transaction_id"]
    assert row["tenantId"] == tenant.tenant_id
    assert row["channel"] == "EMAIL"
    assert row["reason"] == "provider_error"
    assert row["attempts"] == 3
    assert row["recordStatus"] == "FAILED"
    assert row["originalQueue"] == dlq_writer.topology.queue(Channel.EMAIL)

    # The provider works now: configure it, give the user an address, replay.
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {"email": "u1@x.io"}}
    )
    replayed = await ok_rpc(
        tenant, "manage/replay-dead-letters", {"transactionIds": [record["transaction_id"]]}
    )
    assert replayed["count"] == 1
    assert replayed["notificationIds"] == [record["_id"]]
    assert replayed["dryRun"] is False

    final = await wait_notification(tenant, record["_id"])
    assert final["result"] == "DELIVERED"
    assert [a["outcome"] for a in final["attempts"]] == ["FAILED"] * 3 + ["DELIVERED"]
    [mail] = sendgrid.mails_to("u1@x.io")
    assert mail["subject"] == "Your invoice"
    assert system.db is not None
    stored = await stored_doc(system.db, tenant_id=tenant.tenant_id, notification_id=record["_id"])
    assert stored is not None
    assert stored["status"] == "DELIVERED"
    assert stored["replays"] == 1
    assert "dead_lettered_at" not in stored

    assert (await ok_rpc(tenant, "manage/list-dead-letters", {}))["deadLetters"] == []
    missing = await rpc(tenant, "manage/get-dead-letter", {"notificationId": record["_id"]})
    assert missing.status_code == 404
    assert missing.json()["error"] == [f"no dead letter for notification {record['_id']}"]
    [op] = (await ok_rpc(tenant, "manage/list-dead-letter-operations", {}))["operations"]
    assert op["action"] == "replay"
    assert op["notificationIds"] == [record["_id"]]
    assert op["actor"].startswith(f"api:{tenant.tenant_id}/test:")
    assert op["filter"]["transactionIds"] == [record["transaction_id"]]


async def test_get_dead_letter_shows_message_record_and_attempts(
    tenant: Tenant, dlq_writer: DeadLetterWriter
) -> None:
    record = await dlq_writer.put(tenant_id=tenant.tenant_id, channel=Channel.PUSH, attempts=2)
    body = await ok_rpc(
        tenant, "manage/get-dead-letter", {"transactionId": record["transaction_id"]}
    )
    [detail] = body["deadLetters"]
    assert detail["notificationId"] == record["_id"]
    assert detail["channel"] == "PUSH"
    assert detail["message"]["body"] == {
        "v": 1,
        "notification_id": record["_id"],
        "tenant_id": tenant.tenant_id,
        "channel": "push",
        "attempt": 2,
        "kind": "deliver",
    }
    assert detail["message"]["headers"]["x-failure-reason"] == "provider_error"
    assert detail["message"]["messageId"] == record["_id"]
    assert detail["record"]["status"] == "FAILED"
    assert detail["record"]["failureReason"] == "provider_error"
    assert [a["attempt"] for a in detail["record"]["attempts"]] == [1, 2]
    assert "content" not in detail["record"]  # no message content or variables in the view


async def test_dead_letter_rpcs_only_see_the_callers_tenant(
    system: System, tenant: Tenant, dlq_writer: DeadLetterWriter
) -> None:
    other = await system.new_tenant()
    try:
        mine = await dlq_writer.put(tenant_id=tenant.tenant_id, reason="bounced")
        theirs = await dlq_writer.put(tenant_id=other.tenant_id, reason="bounced")

        listed = await ok_rpc(other, "manage/list-dead-letters", {"reason": "bounced"})
        assert [d["notificationId"] for d in listed["deadLetters"]] == [theirs["_id"]]
        steal = await ok_rpc(
            other,
            "manage/replay-dead-letters",
            {"transactionIds": [mine["transaction_id"]], "dryRun": False},
        )
        assert (steal["count"], steal["matched"]) == (0, 0)
        assert (
            await rpc(other, "manage/get-dead-letter", {"notificationId": mine["_id"]})
        ).status_code == 404
        purged = await ok_rpc(other, "manage/purge-dead-letters", {"all": True})
        assert purged["notificationIds"] == [theirs["_id"]]

        still = await ok_rpc(tenant, "manage/list-dead-letters", {})
        assert [d["notificationId"] for d in still["deadLetters"]] == [mine["_id"]]
        ops = (await ok_rpc(other, "manage/list-dead-letter-operations", {}))["operations"]
        assert [(o["action"], o["tenantId"]) for o in ops] == [
            ("purge", other.tenant_id),
            ("replay", other.tenant_id),
        ]
        assert (await ok_rpc(tenant, "manage/list-dead-letter-operations", {}))["operations"] == []
    finally:
        await other.client.aclose()


async def test_purge_and_dry_runs_through_the_rpcs(
    tenant: Tenant, dlq_writer: DeadLetterWriter
) -> None:
    old = await dlq_writer.put(tenant_id=tenant.tenant_id, failed_at=at(120))
    new = await dlq_writer.put(tenant_id=tenant.tenant_id, failed_at=at(1))
    window = {"failedBefore": at(60).isoformat(), "channel": "EMAIL"}

    dry = await ok_rpc(tenant, "manage/purge-dead-letters", {**window, "all": True, "dryRun": True})
    assert (dry["dryRun"], dry["notificationIds"]) == (True, [old["_id"]])
    would = await ok_rpc(tenant, "manage/replay-dead-letters", {"limit": 5, "dryRun": True})
    assert would["notificationIds"] == [old["_id"], new["_id"]]
    listed = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert [d["notificationId"] for d in listed["deadLetters"]] == [old["_id"], new["_id"]]

    purged = await ok_rpc(tenant, "manage/purge-dead-letters", {**window, "all": True})
    assert purged["notificationIds"] == [old["_id"]]
    listed = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert [d["notificationId"] for d in listed["deadLetters"]] == [new["_id"]]
    ops = (await ok_rpc(tenant, "manage/list-dead-letter-operations", {"action": "purge"}))[
        "operations"
    ]
    assert [(o["dryRun"], o["count"]) for o in ops] == [(False, 1), (True, 1)]
    assert ops[0]["filter"]["channels"] == ["EMAIL"]
    assert ops[0]["filter"]["failedBefore"].endswith("Z")


@pytest.mark.parametrize(
    ("name", "body", "errors"),
    [
        (
            "manage/replay-dead-letters",
            {},
            ["one of transactionIds, notificationIds, limit or all is required"],
        ),
        (
            "manage/purge-dead-letters",
            {"reason": "bounced"},
            ["one of transactionIds, notificationIds, limit or all is required"],
        ),
        (
            "manage/replay-dead-letters",
            {"all": True, "limit": 5},
            ["all and limit cannot be combined"],
        ),
        ("manage/replay-dead-letters", {"limit": 0}, ["limit must not be less than 1"]),
        ("manage/purge-dead-letters", {"all": "yes"}, ["all must be a boolean"]),
        ("manage/replay-dead-letters", {"all": True, "dryRun": 1}, ["dryRun must be a boolean"]),
        (
            "manage/replay-dead-letters",
            {"transactionIds": []},
            ["transactionIds must contain at least 1 items"],
        ),
        (
            "manage/list-dead-letters",
            {"failedBefore": "yesterday"},
            ["failedBefore must be an ISO-8601 date-time such as 2025-01-31T12:00:00Z"],
        ),
        (
            "manage/list-dead-letters",
            {"failedAfter": "2025-01-31T12:00:00"},
            ["failedAfter must include a time zone, e.g. 2025-01-31T12:00:00Z"],
        ),
        (
            "manage/list-dead-letters",
            {"failedAfter": 1700000000},
            ["failedAfter must be an ISO-8601 date-time string such as 2025-01-31T12:00:00Z"],
        ),
        (
            "manage/list-dead-letters",
            {"failedAfter": "2025-02-01T00:00:00Z", "failedBefore": "2025-01-01T00:00:00Z"},
            ["failedAfter must be earlier than failedBefore"],
        ),
        (
            "manage/list-dead-letters",
            {"channel": "FAX", "limit": 5000},
            [
                "channel must be one of the following values: PUSH, IN_APP, EMAIL, SMS, CHAT",
                "limit must not be greater than 1000",
            ],
        ),
        (
            "manage/get-dead-letter",
            {},
            ["exactly one of notificationId or transactionId is required"],
        ),
        (
            "manage/list-dead-letter-operations",
            {"action": "delete"},
            ["action must be one of the following values: replay, purge"],
        ),
    ],
)
async def test_validation_errors_name_the_field(
    tenant: Tenant, name: str, body: dict[str, Any], errors: list[str]
) -> None:
    response = await rpc(tenant, name, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == errors


async def test_dead_letter_rpcs_need_an_admin_key(system: System) -> None:
    sender = await system.new_tenant(scopes=("send",))
    try:
        response = await rpc(sender, "manage/list-dead-letters", {})
        assert response.status_code == 403
    finally:
        await sender.client.aclose()


async def test_a_busy_dlq_is_409_and_a_cut_broker_link_is_503(settings: Settings) -> None:
    target = urlparse(settings.rabbitmq_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    url = f"amqp://{target.username}:{target.password}@127.0.0.1:{proxy.port}/"
    sut = System(settings.model_copy(update={"rabbitmq_url": url, "publish_timeout_s": 1}))
    try:
        await sut.start([])
        tenant = await sut.new_tenant()
        connection = await aio_pika.connect(settings.rabbitmq_url)
        async with connection:  # another operation holds the SMS DLQ
            channel = await connection.channel()
            await channel.declare_queue(
                Topology(settings.prefix).dlq_lock(Channel.SMS),
                exclusive=True,
                durable=False,
                arguments={"x-max-length": 0},
            )
            busy = await rpc(tenant, "manage/list-dead-letters", {"channel": "SMS"})
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"] == [
            f"another dead-letter operation is working on {settings.prefix}.sms.dlq; "
            "try again shortly"
        ]

        await proxy.cut()
        down = await rpc(tenant, "manage/replay-dead-letters", {"all": True})
        assert down.status_code == 503, down.text
        assert down.json()["error"] == ["cannot connect to RabbitMQ: AMQPConnectionError"]
        assert down.headers["retry-after"] == "5"
        await tenant.client.aclose()
    finally:
        await sut.stop()
        await proxy.cut()
