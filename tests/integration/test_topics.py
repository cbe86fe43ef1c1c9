"""Topics (seed 000): creating, subscribing, paging, sending to a topic through the fan-out
worker (several batches: the test settings use batches of 3), exclusions, the status summary
and the recipients' pages."""

from __future__ import annotations

from typing import Any

import pytest

from shared.db.base import utcnow
from shared.db.fanouts import FanoutState
from tests.integration.helpers import ok_rpc, rpc, wait_final_status
from tests.support import System, Tenant, wait_for

M = "manage/"


async def _topic(tenant: Tenant, key: str, users: list[str]) -> None:
    """A topic whose subscribers are these new in-app users (in-app needs no provider)."""
    await ok_rpc(tenant, f"{M}create-topic", {"topicKey": key, "name": key.title()})
    for user in users:
        await ok_rpc(tenant, f"{M}create-subscriber", {"userId": user, "subscriberData": {}})
    for start in range(0, len(users), 100):
        added = await ok_rpc(
            tenant,
            f"{M}add-subscribers-to-topic",
            {"topicKey": key, "subscriberIds": users[start : start + 100]},
        )
        assert added["added"] == users[start : start + 100]


def _in_app(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "topicKey": key,
        "channel": "IN_APP",
        "category": "PRODUCT",
        "content": {"title": "Weekly Update", "body": "Your weekly health summary is ready"},
        **extra,
    }


async def _errors(tenant: Tenant, name: str, body: dict[str, Any]) -> list[str]:
    response = await rpc(tenant, name, body)
    assert response.status_code == 400, response.text
    errors: list[str] = response.json()["error"]
    return errors


async def test_create_topic_then_the_same_key_again_is_409(tenant: Tenant) -> None:
    created = await ok_rpc(tenant, f"{M}create-topic", {"topicKey": "weekly-updates"})
    assert created["topic"]["topicKey"] == "weekly-updates"
    again = await rpc(tenant, f"{M}create-topic", {"topicKey": "weekly-updates"})
    assert again.status_code == 409
    assert "topic weekly-updates already exists" in again.json()["error"]


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", "topicKey should not be empty"),
        ("a" * 65, "topicKey must be at most 64 characters"),
        ("bad key!", "topicKey"),
    ],
)
async def test_a_topic_key_breaking_the_rules_is_400(tenant: Tenant, key: str, error: str) -> None:
    errors = await _errors(tenant, f"{M}create-topic", {"topicKey": key})
    assert any(error in e for e in errors), errors
    listed = await ok_rpc(tenant, f"{M}list-topics", {})
    assert listed["totalCount"] == 0


async def test_101_ids_are_400_and_change_nothing(tenant: Tenant) -> None:
    await _topic(tenant, "t", ["u1"])
    ids = [f"u{i}" for i in range(101)]
    for name in ("add-subscribers-to-topic", "remove-subscribers-from-topic"):
        errors = await _errors(tenant, f"{M}{name}", {"topicKey": "t", "subscriberIds": ids})
        assert "subscriberIds must contain at most 100 items" in errors
    empty = await _errors(
        tenant, f"{M}add-subscribers-to-topic", {"topicKey": "t", "subscriberIds": []}
    )
    assert "subscriberIds must contain at least 1 items" in empty
    page = await ok_rpc(tenant, f"{M}list-topic-subscribers", {"topicKey": "t"})
    assert [s["subscriberId"] for s in page["subscribers"]] == ["u1"]


async def test_add_and_remove_report_added_unknown_and_not_subscribed(tenant: Tenant) -> None:
    await _topic(tenant, "t", ["u1"])
    await ok_rpc(tenant, f"{M}create-subscriber", {"userId": "u2", "subscriberData": {}})
    added = await ok_rpc(
        tenant,
        f"{M}add-subscribers-to-topic",
        {"topicKey": "t", "subscriberIds": ["u1", "u2", "ghost", "u2"]},
    )
    assert added == {
        "topicKey": "t",
        "added": ["u2"],
        "alreadySubscribed": ["u1"],
        "unknownSubscribers": ["ghost"],
    }
    await ok_rpc(tenant, f"{M}create-subscriber", {"userId": "u3", "subscriberData": {}})
    removed = await ok_rpc(
        tenant,
        f"{M}remove-subscribers-from-topic",
        {"topicKey": "t", "subscriberIds": ["u1", "u3", "ghost"]},
    )
    assert removed == {
        "topicKey": "t",
        "removed": ["u1"],
        "notSubscribed": ["u3"],
        "unknownSubscribers": ["ghost"],
    }
    for user, subscribed in (("u1", False), ("u2", True), ("ghost", False)):
        check = await ok_rpc(
            tenant, f"{M}check-topic-subscription", {"topicKey": "t", "subscriberId": user}
        )
        assert check == {"subscribed": subscribed}


async def test_an_unknown_topic_is_404_everywhere(tenant: Tenant) -> None:
    for name, body in (
        ("delete-topic", {"topicKey": "nope"}),
        ("add-subscribers-to-topic", {"topicKey": "nope", "subscriberIds": ["u1"]}),
        ("remove-subscribers-from-topic", {"topicKey": "nope", "subscriberIds": ["u1"]}),
        ("list-topic-subscribers", {"topicKey": "nope"}),
        ("check-topic-subscription", {"topicKey": "nope", "subscriberId": "u1"}),
        ("send-to-topic", _in_app("nope")),
    ):
        response = await rpc(tenant, f"{M}{name}", body)
        assert response.status_code == 404, (name, response.text)
        assert "topic nope does not exist" in response.json()["error"]


async def test_subscribers_and_topics_are_paged(tenant: Tenant) -> None:
    users = [f"u{i}" for i in range(5)]
    await _topic(tenant, "t", users)
    seen: list[str] = []
    for page in (1, 2, 3):
        answer = await ok_rpc(
            tenant, f"{M}list-topic-subscribers", {"topicKey": "t", "page": page, "pageSize": 2}
        )
        assert (answer["page"], answer["pageSize"], answer["totalCount"]) == (page, 2, 5)
        assert answer["hasMore"] is (page < 3)
        seen += [s["subscriberId"] for s in answer["subscribers"]]
    assert seen == users  # subscription order
    await ok_rpc(tenant, f"{M}create-topic", {"topicKey": "a-first"})
    topics = await ok_rpc(tenant, f"{M}list-topics", {"pageSize": 1})
    assert (topics["totalCount"], topics["hasMore"]) == (2, True)
    assert [t["topicKey"] for t in topics["topics"]] == ["a-first"]


async def test_delete_topic_removes_its_subscriptions_and_frees_the_key(tenant: Tenant) -> None:
    await _topic(tenant, "t", ["u1", "u2"])
    deleted = await ok_rpc(tenant, f"{M}delete-topic", {"topicKey": "t"})
    assert deleted["subscriptionsRemoved"] == 2
    assert (await rpc(tenant, f"{M}delete-topic", {"topicKey": "t"})).status_code == 404
    await ok_rpc(tenant, f"{M}create-topic", {"topicKey": "t"})
    page = await ok_rpc(tenant, f"{M}list-topic-subscribers", {"topicKey": "t"})
    assert page["totalCount"] == 0


async def test_a_deleted_subscriber_leaves_every_topic(tenant: Tenant) -> None:
    await _topic(tenant, "t", ["u1", "u2"])
    await ok_rpc(tenant, f"{M}delete-subscriber", {"userId": "u1"})
    page = await ok_rpc(tenant, f"{M}list-topic-subscribers", {"topicKey": "t"})
    assert [s["subscriberId"] for s in page["subscribers"]] == ["u2"]


async def test_send_to_topic_reaches_every_subscriber_but_the_excluded(
    system: System, tenant: Tenant
) -> None:
    users = [f"u{i:02d}" for i in range(11)]  # 4 batches of 3
    await _topic(tenant, "weekly-updates", users)
    sent = await ok_rpc(
        tenant,
        f"{M}send-to-topic",
        _in_app("weekly-updates", excludeUserIds=["u03", "u07", "not-subscribed"]),
    )
    assert list(sent) == ["transactionId"]
    status = await wait_final_status(tenant, sent["transactionId"])
    assert status["result"] == "DELIVERED"
    assert status["summary"] == {"DELIVERED": 9, "total": 9}
    assert status["topicKey"] == "weekly-updates"
    assert status["channel"] == "IN_APP"
    assert status["fanout"]["state"] == "DONE"
    assert (status["fanout"]["recipients"], status["fanout"]["excluded"]) == (9, 2)
    assert "recipients" not in status  # rows come from list-transaction-recipients
    assert system.db is not None
    inbox = [
        d["subscriber_id"] async for d in system.db.inbox.col.find({"tenant_id": tenant.tenant_id})
    ]
    assert sorted(inbox) == [u for u in users if u not in ("u03", "u07")]
    fanout = await system.db.fanouts.get(
        tenant_id=tenant.tenant_id, fanout_id=sent["transactionId"]
    )
    assert fanout is not None
    assert fanout["batches"] == 4


async def test_transaction_recipients_are_paged_and_filtered_by_result(tenant: Tenant) -> None:
    users = [f"u{i}" for i in range(5)]
    await _topic(tenant, "t", users)
    sent = await ok_rpc(tenant, f"{M}send-to-topic", _in_app("t"))
    await wait_final_status(tenant, sent["transactionId"])
    txn = sent["transactionId"]
    rows: list[str] = []
    for page in (1, 2):
        answer = await ok_rpc(
            tenant,
            f"{M}list-transaction-recipients",
            {"transactionId": txn, "page": page, "pageSize": 3},
        )
        assert (answer["totalCount"], answer["hasMore"]) == (5, page == 1)
        rows += [r["userId"] for r in answer["recipients"]]
        assert {r["result"] for r in answer["recipients"]} == {"DELIVERED"}
    assert sorted(rows) == users
    delivered = await ok_rpc(
        tenant, f"{M}list-transaction-recipients", {"transactionId": txn, "result": "DELIVERED"}
    )
    assert delivered["totalCount"] == 5
    failed = await ok_rpc(
        tenant, f"{M}list-transaction-recipients", {"transactionId": txn, "result": "FAILED"}
    )
    assert (failed["totalCount"], failed["recipients"]) == (0, [])
    errors = await _errors(
        tenant, f"{M}list-transaction-recipients", {"transactionId": txn, "result": "MAYBE"}
    )
    assert any(e.startswith("result") for e in errors), errors
    missing = await rpc(tenant, f"{M}list-transaction-recipients", {"transactionId": "txn_x"})
    assert missing.status_code == 404


async def test_send_to_topic_validates_its_body(tenant: Tenant) -> None:
    await _topic(tenant, "t", ["u1"])
    errors = await _errors(
        tenant, f"{M}send-to-topic", _in_app("t", excludeUserIds=[f"x{i}" for i in range(1001)])
    )
    assert "excludeUserIds must contain at most 1000 items" in errors
    errors = await _errors(tenant, f"{M}send-to-topic", {"topicKey": "t", "channel": "FAX"})
    assert any(e.startswith("channel") for e in errors)
    assert "content is required" in errors


async def test_the_same_idempotency_key_answers_the_first_topic_send(
    system: System, tenant: Tenant
) -> None:
    await _topic(tenant, "t", ["u1", "u2"])
    first = await ok_rpc(tenant, f"{M}send-to-topic", _in_app("t", idempotencyKey="k1"))
    second = await ok_rpc(tenant, f"{M}send-to-topic", _in_app("t", idempotencyKey="k1"))
    assert first == second
    await wait_final_status(tenant, first["transactionId"])
    assert system.db is not None
    count = await system.db.notifications.col.count_documents({"tenant_id": tenant.tenant_id})
    assert count == 2


async def test_the_sweep_publishes_a_fan_out_whose_message_was_never_confirmed(
    system: System, tenant: Tenant
) -> None:
    """A fan-out stored by an API that died before its publish: PENDING, no `enqueued_at`."""
    from workers.fanout.service import FanoutSweep

    await _topic(tenant, "t", ["u1", "u2", "u3", "u4"])
    assert system.db is not None
    topic = await system.db.topics.get(tenant_id=tenant.tenant_id, key="t")
    assert topic is not None
    old = utcnow().replace(year=2020)
    doc = {
        "_id": "txn_swept",
        "tenant_id": tenant.tenant_id,
        "kind": "topic",
        "topic_id": topic["_id"],
        "topic_key": "t",
        "environment": "development",
        "exclude": [],
        "state": FanoutState.PENDING.value,
        "recipients": 0,
        "excluded": 0,
        "batches": 0,
        "channel": "in_app",
        "category": "PRODUCT",
        "priority": 1,
        "content": {"title": "t", "body": "b"},
        "created_at": old,
        "updated_at": old,
    }
    await system.db.fanouts.col.insert_one(doc)
    s = system.settings
    ctx = system.workers[0].ctx
    assert ctx is not None
    sweep = FanoutSweep(
        db=system.db,
        broker=ctx.broker,
        outbox_grace_s=s.outbox_grace_s,
        overdue_grace_s=s.overdue_grace_s,
        stall_s=s.fanout_stall_s,
        limit=100,
    )
    republished = await sweep.sweep()
    assert "txn_swept" in republished
    status = await wait_final_status(tenant, "txn_swept")
    assert status["summary"] == {"DELIVERED": 4, "total": 4}
    assert "txn_swept" not in await sweep.sweep()  # DONE: nothing more to publish


async def test_a_workflow_trigger_with_a_topic_key_runs_for_every_subscriber(
    tenant: Tenant,
) -> None:
    from tests.integration.workflow_support import WELCOME, create_workflow, welcome

    users = [f"u{i}" for i in range(4)]
    await _topic(tenant, "news", users)
    workflow = await create_workflow(tenant, welcome(steps=[WELCOME["steps"][0]]))
    missing = await rpc(
        tenant, f"{M}trigger", {"workflowId": workflow["workflowId"], "topicKey": "nope"}
    )
    assert missing.status_code == 404
    triggered = await ok_rpc(
        tenant, f"{M}trigger", {"workflowId": workflow["workflowId"], "topicKey": "news"}
    )
    status = await wait_final_status(tenant, triggered["transactionId"])
    assert status["summary"] == {"DELIVERED": 4, "total": 4}
    rows = await ok_rpc(
        tenant, f"{M}list-transaction-recipients", {"transactionId": triggered["transactionId"]}
    )
    assert sorted(r["userId"] for r in rows["recipients"]) == users


async def test_get_delivery_status_of_a_running_fan_out_reads_sent(
    system: System, tenant: Tenant
) -> None:
    await _topic(tenant, "t", ["u1"])
    sent = await ok_rpc(tenant, f"{M}send-to-topic", _in_app("t"))

    async def known() -> dict[str, Any] | None:
        status = await ok_rpc(
            tenant, f"{M}get-delivery-status", {"transactionId": sent["transactionId"]}
        )
        return status

    first = await wait_for(known, what="a status")
    assert first["result"] in ("SENT", "DELIVERED")
    assert first["summary"]["total"] in (0, 1)


async def test_a_subscriber_added_while_the_fan_out_runs_is_included(
    system: System, tenant: Tenant
) -> None:
    """Run the expander in-process with a hook that subscribes one more user mid-way."""
    from api.topic_schemas import SendToTopicRequest
    from api.topic_sends import fanout_document
    from workers.fanout.expand import FanoutExpander, FanoutHooks

    # Two windows of 3; `late` gets number 7, past the highest number the claim saw: only the
    # worker's second look at the topic finds it.
    await _topic(tenant, "t", [f"u{i}" for i in range(6)])
    await ok_rpc(tenant, f"{M}create-subscriber", {"userId": "late", "subscriberData": {}})
    assert system.db is not None
    db = system.db
    topic = await db.topics.get(tenant_id=tenant.tenant_id, key="t")
    assert topic is not None
    added: list[str] = []

    async def after_batch(n: int) -> None:
        if n == 1:  # one window done, two to go: `late` is subscribed right now
            added.append("late")
            answer = await ok_rpc(
                tenant, f"{M}add-subscribers-to-topic", {"topicKey": "t", "subscriberIds": added}
            )
            assert answer["added"] == ["late"]

    ctx = system.workers[0].ctx
    assert ctx is not None
    expander = FanoutExpander(
        db=db, pipeline=ctx.pipeline, settings=system.settings, hooks=FanoutHooks(after_batch)
    )
    doc = fanout_document(
        tenant_id=tenant.tenant_id,
        environment="development",
        topic=topic,
        correlation_id=None,
        idempotency_key=None,
        exclude=None,
        body=SendToTopicRequest.model_validate(_in_app("t")),
    )
    await db.fanouts.col.insert_one(doc)
    await expander.run(
        tenant_id=tenant.tenant_id, fanout_id=doc["_id"], claim="c1", take_over=False
    )
    assert added == ["late"]
    status = await wait_final_status(tenant, doc["_id"])
    recipients = await ok_rpc(
        tenant, f"{M}list-transaction-recipients", {"transactionId": doc["_id"], "pageSize": 50}
    )
    assert sorted(r["userId"] for r in recipients["recipients"]) == sorted(
        [f"u{i}" for i in range(6)] + ["late"]
    )
    assert status["summary"] == {"DELIVERED": 7, "total": 7}
