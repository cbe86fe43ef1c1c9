"""The inbox RPCs: feed, counts, marks, mark-all, delete; ownership; bad input; the index."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings
from tests.integration.helpers import ok_rpc, rpc
from tests.integration.inbox_support import send_in_app
from tests.support import System, Tenant

U1 = "inbox-u1"


async def feed(tenant: Tenant, user: str, **body: Any) -> dict[str, Any]:
    """get-inbox-feed as `user` through the gateway headers."""
    return await ok_rpc(tenant, "get-inbox-feed", body, headers=tenant.user_headers(user))


async def counts(tenant: Tenant, user: str) -> tuple[int, int]:
    """(unseenCount, unreadCount) of `user`."""
    data = await ok_rpc(tenant, "get-inbox-unseen-count", {}, headers=tenant.user_headers(user))
    return data["unseenCount"], data["unreadCount"]


async def mark(tenant: Tenant, user: str, message_id: str, status: str) -> str:
    """mark-inbox-message; the message's new status."""
    data = await ok_rpc(
        tenant,
        "mark-inbox-message",
        {"messageId": message_id, "status": status},
        headers=tenant.user_headers(user),
    )
    assert data["messageId"] == message_id
    return str(data["status"])


async def test_the_feed_is_the_seeds_shape_newest_first_and_paged(tenant: Tenant) -> None:
    for i in range(3):
        await send_in_app(tenant, U1, title=f"t{i}", body=f"b{i}")
    page1 = await feed(tenant, U1, page=1, pageSize=2)
    assert page1["hasMore"] is True
    assert [m["title"] for m in page1["messages"]] == ["t2", "t1"]
    item = page1["messages"][0]
    assert set(item) == {
        "messageId",
        "notificationId",
        "title",
        "body",
        "data",
        "deepLink",
        "status",
        "category",
        "createdAt",
        "feedId",
    }
    assert item["status"] == "UNSEEN"
    assert item["body"] == "b2"
    assert item["data"] == {"k": "v"}
    assert item["category"] == "TRANSACTIONAL"
    assert item["feedId"] == "default"
    assert item["createdAt"].endswith("Z")
    assert item["messageId"].startswith("msg_")
    page2 = await feed(tenant, U1, page=2, pageSize=2)
    assert page2["hasMore"] is False
    assert [m["title"] for m in page2["messages"]] == ["t0"]
    assert (await feed(tenant, U1, page=3, pageSize=2)) == {"messages": [], "hasMore": False}
    assert (await feed(tenant, "nobody"))["messages"] == []


async def test_feeds_and_categories_narrow_the_feed(tenant: Tenant) -> None:
    await send_in_app(tenant, U1, title="plain")
    await send_in_app(tenant, U1, title="coach", feed_id="coaching", category="PRODUCT")
    await send_in_app(tenant, U1, title="promo", feed_id="coaching", category="PROMOTIONAL")

    def titles(data: dict[str, Any]) -> list[str]:
        return [m["title"] for m in data["messages"]]

    assert titles(await feed(tenant, U1)) == ["promo", "coach", "plain"]
    assert titles(await feed(tenant, U1, feedIds=["default"])) == ["plain"]
    assert titles(await feed(tenant, U1, feedIds=["coaching"])) == ["promo", "coach"]
    assert titles(await feed(tenant, U1, feedIds=["coaching"], categories=["PRODUCT"])) == ["coach"]
    assert titles(await feed(tenant, U1, categories=["TRANSACTIONAL", "PROMOTIONAL"])) == [
        "promo",
        "plain",
    ]


async def test_marks_derive_the_status_and_move_the_counts(tenant: Tenant) -> None:
    await send_in_app(tenant, U1, title="a")
    await send_in_app(tenant, U1, title="b")
    a, b = reversed((await feed(tenant, U1))["messages"])
    assert await counts(tenant, U1) == (2, 2)

    assert await mark(tenant, U1, a["messageId"], "SEEN") == "SEEN"
    assert await counts(tenant, U1) == (1, 2)
    assert await mark(tenant, U1, a["messageId"], "READ") == "READ"
    assert await counts(tenant, U1) == (1, 1)
    assert await mark(tenant, U1, a["messageId"], "UNREAD") == "SEEN"  # read cleared, seen kept
    assert await counts(tenant, U1) == (1, 2)
    assert await mark(tenant, U1, b["messageId"], "READ") == "READ"  # READ is also seen
    assert await counts(tenant, U1) == (0, 1)
    assert await mark(tenant, U1, b["messageId"], "UNSEEN") == "UNSEEN"  # clears both
    assert await counts(tenant, U1) == (1, 2)
    assert await mark(tenant, U1, b["messageId"], "UNSEEN") == "UNSEEN"  # again: no change
    statuses = {m["messageId"]: m["status"] for m in (await feed(tenant, U1))["messages"]}
    assert statuses == {a["messageId"]: "SEEN", b["messageId"]: "UNSEEN"}


async def test_mark_all_answers_how_many_changed_per_feed(tenant: Tenant) -> None:
    await send_in_app(tenant, U1, title="d1")
    await send_in_app(tenant, U1, title="d2")
    await send_in_app(tenant, U1, title="c1", feed_id="coaching")
    headers = tenant.user_headers(U1)

    async def mark_all(**body: Any) -> int:
        data = await ok_rpc(tenant, "mark-all-inbox-messages", body, headers=headers)
        return int(data["updatedCount"])

    assert await mark_all(status="SEEN", feedIds=["default"]) == 2
    assert await counts(tenant, U1) == (1, 3)
    assert await mark_all(status="SEEN", feedIds=["default"]) == 0
    assert await mark_all(status="READ") == 3
    assert await counts(tenant, U1) == (0, 0)
    assert await mark_all(status="UNREAD", feedIds=["coaching"]) == 1
    assert await counts(tenant, U1) == (0, 1)
    assert await mark_all(status="UNSEEN") == 3
    assert await counts(tenant, U1) == (3, 3)


async def test_delete_removes_it_from_the_feed_and_the_counts(tenant: Tenant) -> None:
    await send_in_app(tenant, U1, title="keep")
    await send_in_app(tenant, U1, title="drop")
    drop = (await feed(tenant, U1))["messages"][0]
    assert drop["title"] == "drop"
    headers = tenant.user_headers(U1)
    body = {"messageId": drop["messageId"]}
    deleted = await ok_rpc(tenant, "delete-inbox-message", body, headers=headers)
    assert deleted == {"messageId": drop["messageId"], "deleted": True}
    assert [m["title"] for m in (await feed(tenant, U1))["messages"]] == ["keep"]
    assert await counts(tenant, U1) == (1, 1)
    # Deleting again is harmless; marking a deleted message finds nothing.
    assert (await rpc(tenant, "delete-inbox-message", body, headers=headers)).status_code == 200
    gone = await rpc(tenant, "mark-inbox-message", {**body, "status": "UNSEEN"}, headers=headers)
    assert gone.status_code == 404
    assert await counts(tenant, U1) == (1, 1)
    # Mark-all never brings a deleted message back into the counts.
    await ok_rpc(tenant, "mark-all-inbox-messages", {"status": "UNSEEN"}, headers=headers)
    assert await counts(tenant, U1) == (1, 1)


async def test_another_users_or_tenants_message_is_a_404_and_nothing_changes(
    system: System, tenant: Tenant
) -> None:
    await send_in_app(tenant, U1, title="mine")
    message_id = (await feed(tenant, U1))["messages"][0]["messageId"]
    other = await system.new_tenant()
    try:
        attempts = [
            (tenant, "inbox-u2"),  # same tenant, another user
            (other, U1),  # same user id, another tenant
        ]
        for who, user in attempts:
            headers = who.user_headers(user)
            for name, body in (
                ("mark-inbox-message", {"messageId": message_id, "status": "READ"}),
                ("delete-inbox-message", {"messageId": message_id}),
            ):
                response = await rpc(who, name, body, headers=headers)
                assert response.status_code == 404, (name, user, response.text)
                assert response.json()["error"] == [f"message {message_id} does not exist"]
            assert (await feed(who, user))["messages"] == []
            assert await counts(who, user) == (0, 0)
    finally:
        await other.client.aclose()
    mine = (await feed(tenant, U1))["messages"]
    assert [(m["messageId"], m["status"]) for m in mine] == [(message_id, "UNSEEN")]
    assert await counts(tenant, U1) == (1, 1)


async def test_bad_input_names_the_field_and_the_rule(tenant: Tenant) -> None:
    headers = tenant.user_headers(U1)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("get-inbox-feed", {"pageSize": 0}, "pageSize must not be less than 1"),
        ("get-inbox-feed", {"pageSize": 101}, "pageSize must not be greater than 100"),
        ("get-inbox-feed", {"page": 0}, "page must not be less than 1"),
        ("get-inbox-feed", {"feedIds": []}, "feedIds must contain at least 1 items"),
        ("get-inbox-feed", {"feedIds": ["a b"]}, "feedIds[0] has an invalid format"),
        (
            "get-inbox-feed",
            {"categories": ["NEWS"]},
            "categories[0] must be one of the following values: "
            "SYSTEM, TRANSACTIONAL, PRODUCT, PROMOTIONAL",
        ),
        ("mark-inbox-message", {"status": "READ"}, "messageId is required"),
        (
            "mark-inbox-message",
            {"messageId": "m", "status": "DONE"},
            "status must be one of the following values: SEEN, READ, UNSEEN, UNREAD",
        ),
        ("mark-all-inbox-messages", {}, "status is required"),
        ("delete-inbox-message", {"messageId": ""}, "messageId should not be empty"),
    ]
    for name, body, message in cases:
        response = await rpc(tenant, name, body, headers=headers)
        assert response.status_code == 400, (name, body, response.text)
        assert message in response.json()["error"], (name, response.json())
    # A user RPC needs its user.
    response = await rpc(tenant, "get-inbox-unseen-count", {})
    assert response.status_code == 400
    assert response.json()["error"] == ["X-User-ID header is required for this operation"]


async def test_a_content_feed_id_is_validated_on_send(tenant: Tenant) -> None:
    response = await rpc(
        tenant,
        "manage/send",
        {"userId": U1, "channel": "IN_APP", "content": {"body": "x", "feedId": "no spaces"}},
    )
    assert response.status_code == 400
    assert response.json()["error"] == ["content.feedId has an invalid format"]


async def test_the_counts_come_from_an_index(system: System, tenant: Tenant) -> None:
    """`explain` of both counts: an index scan on the subscriber's keys, never a collection
    scan."""
    assert system.db is not None
    inbox = system.db.inbox
    for query in inbox.count_filters(tenant_id=tenant.tenant_id, subscriber_id=U1):
        plan = await system.db.db.command(
            "explain", {"count": inbox.collection_name, "query": query}, verbosity="queryPlanner"
        )
        text = str(plan["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in text, plan
        assert "IXSCAN" in text or "COUNT_SCAN" in text, plan
        assert "subscriber_id" in text, plan


async def test_a_session_reaches_the_public_urls_from_settings(
    system: System, tenant: Tenant, settings: Settings
) -> None:
    data = await ok_rpc(tenant, "get-inbox-session", {}, headers=tenant.user_headers(U1))
    assert set(data) == {"sessionToken", "apiUrl", "wsUrl"}
    assert data["apiUrl"] == system.base_url  # no public URL set: the address it was asked at
    assert data["wsUrl"] == system.base_url.replace("http:", "ws:") + (
        "/api/v1/notifications/inbox/ws"
    )
    assert data["sessionToken"].count(".") == 2
