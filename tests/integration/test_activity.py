"""`manage/get-notification-activity` (every filter, paging, an index under every query
checked with `explain`) and `manage/get-notification-stats`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.db.base import Doc, utcnow
from shared.db.notifications.activity import ActivityFilter
from shared.domain import Channel, Status
from tests.integration.helpers import ok_rpc, rpc
from tests.records import record_doc
from tests.support import System, Tenant

CHANNELS = [Channel.PUSH, Channel.EMAIL, Channel.IN_APP, Channel.SMS]
CATEGORIES = ["TRANSACTIONAL", "PRODUCT", "PROMOTIONAL"]
STATUSES = [Status.DELIVERED, Status.FAILED, Status.QUEUED, Status.OPTED_OUT, Status.RETRYING]
COUNT = 60


async def _seed(system: System, tenant: Tenant, now: datetime) -> list[Doc]:
    """COUNT records, one every 4 hours back from now, with varied fields; newest first."""
    docs = [
        record_doc(
            tenant_id=tenant.tenant_id,
            channel=CHANNELS[i % 4],
            recipient=f"u{i % 5}",
            transaction_id=f"txn-{i % 6}",
            created_at=now - timedelta(hours=4 * i, milliseconds=i),
            category=CATEGORIES[i % 3],
            status=STATUSES[i % 5].value,
        )
        for i in range(COUNT)
    ]
    other = record_doc(tenant_id="someone-else", created_at=now)
    assert system.db is not None
    await system.db.notifications.col.insert_many([*docs, other])
    return docs


def _matches(doc: Doc, body: dict[str, Any]) -> bool:
    result = Status(doc["status"]).result
    created = doc["created_at"]
    return (
        ("channels" not in body or Channel(doc["channel"]).api_name in body["channels"])
        and ("categories" not in body or doc["category"] in body["categories"])
        and ("results" not in body or result in body["results"])
        and ("userId" not in body or doc["recipient"] == body["userId"])
        and ("transactionId" not in body or doc["transaction_id"] == body["transactionId"])
        and ("startTime" not in body or created >= _time(body["startTime"]))
        and ("endTime" not in body or created <= _time(body["endTime"]))
    )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _all_pages(tenant: Tenant, body: dict[str, Any], page_size: int) -> list[str]:
    ids: list[str] = []
    for page in range(1, 1000):
        answer = await ok_rpc(
            tenant,
            "manage/get-notification-activity",
            {**body, "page": page, "pageSize": page_size},
        )
        assert (answer["page"], answer["pageSize"]) == (page, page_size)
        ids += [a["notificationId"] for a in answer["activities"]]
        if not answer["hasMore"]:
            return ids
        assert len(answer["activities"]) == page_size
    raise AssertionError("no last page")


def _filters(now: datetime) -> list[dict[str, Any]]:
    return [
        {},
        {"channels": ["PUSH", "EMAIL"]},
        {"categories": ["PROMOTIONAL"]},
        {"results": ["SENT"]},
        {"results": ["FAILED", "OPTED_OUT"]},
        {"userId": "u3"},
        {"transactionId": "txn-2"},
        {"startTime": _iso(now - timedelta(days=3)), "endTime": _iso(now - timedelta(days=1))},
        {"endTime": _iso(now - timedelta(days=8))},
        {"userId": "u1", "channels": ["EMAIL"]},
        {"results": ["DELIVERED"], "categories": ["PRODUCT", "TRANSACTIONAL"]},
        {"transactionId": "txn-4", "results": ["SENT"], "startTime": _iso(now - timedelta(days=5))},
        {"channels": ["CHAT"]},
    ]


async def test_every_filter_and_every_page_matches_the_records(
    system: System, tenant: Tenant
) -> None:
    now = utcnow()
    docs = await _seed(system, tenant, now)
    for body in _filters(now):
        expected = [d["_id"] for d in docs if _matches(d, body)]
        for page_size in (1, 7, 500):
            assert await _all_pages(tenant, body, page_size) == expected, (body, page_size)


async def test_an_activity_row_has_the_seeds_fields(system: System, tenant: Tenant) -> None:
    now = utcnow()
    docs = await _seed(system, tenant, now)
    answer = await ok_rpc(tenant, "manage/get-notification-activity", {"pageSize": 2})
    first = answer["activities"][0]
    assert first == {
        "notificationId": docs[0]["_id"],
        "transactionId": "txn-0",
        "userId": "u0",
        "channel": "PUSH",
        "category": "TRANSACTIONAL",
        "result": "DELIVERED",
        "provider": None,
        "failureReason": None,
        "createdAt": _iso(docs[0]["created_at"]),
        "deliveredAt": None,
        "workflowId": None,
        "environment": "development",
    }
    assert answer["activities"][1]["result"] == "FAILED"
    assert answer["hasMore"] is True


def _plan_stages(plan: dict[str, Any]) -> list[dict[str, Any]]:
    stages = [plan]
    for key in ("inputStage", "queryPlan"):
        if isinstance(plan.get(key), dict):
            stages += _plan_stages(plan[key])
    for child in plan.get("inputStages", []):
        stages += _plan_stages(child)
    return stages


async def test_every_query_the_feed_makes_is_planned_on_an_index(
    system: System, tenant: Tenant
) -> None:
    from api.activity_schemas import ActivityRequest
    from api.routes.activity import activity_filter

    assert system.db is not None
    now = utcnow()
    await _seed(system, tenant, now)
    expected_index = {
        "transactionId": {"tenant_id": 1, "transaction_id": 1, "status": 1},
        "userId": {"tenant_id": 1, "recipient": 1, "created_at": 1},
        "results": {"tenant_id": 1, "status": 1, "created_at": 1},
    }
    for body in _filters(now):
        flt: ActivityFilter = activity_filter(ActivityRequest.model_validate(body))
        queries = system.db.activity.first_window_queries(tenant_id=tenant.tenant_id, flt=flt)
        driver = next((k for k in expected_index if k in body), None)
        default = {"tenant_id": 1, "channel": 1, "created_at": 1}
        want = expected_index[driver] if driver else default
        assert queries
        for query in queries:
            explained = (
                await system.db.notifications.col.find(query).sort("created_at", -1).explain()
            )
            stages = _plan_stages(explained["queryPlanner"]["winningPlan"])
            names = [s.get("stage") for s in stages]
            assert "COLLSCAN" not in names, (body, query, names)
            [scan] = [s for s in stages if s.get("stage") == "IXSCAN"]
            assert scan["keyPattern"] == want, (body, query, scan)


async def test_bad_activity_filters_are_refused(tenant: Tenant) -> None:
    response = await rpc(
        tenant,
        "manage/get-notification-activity",
        {
            "results": ["LOST"],
            "channels": ["FAX"],
            "startTime": "2026-03-18T00:00:00",
            "pageSize": 0,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == [
        "pageSize must not be less than 1",
        "channels[0] must be one of the following values: PUSH, IN_APP, EMAIL, SMS, CHAT",
        "results[0] must be one of the following values: SENT, DELIVERED, RATE_LIMITED, "
        "OPTED_OUT, NO_CHANNEL, INVALID_CREDENTIAL, CANCELLED, FAILED",
        "startTime must include a time zone, e.g. 2025-01-31T12:00:00Z",
    ]
    response = await rpc(
        tenant,
        "manage/get-notification-activity",
        {"startTime": "2026-03-18T00:00:00Z", "endTime": "2026-03-17T00:00:00Z"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == ["endTime must not be before startTime"]


async def test_stats_count_week_month_year_and_each_day_by_channel_and_result(
    system: System, tenant: Tenant
) -> None:
    now = utcnow()
    ages = [timedelta(hours=1), timedelta(hours=2), timedelta(days=2), timedelta(days=6, hours=23)]
    ages += [timedelta(days=8), timedelta(days=29), timedelta(days=40), timedelta(days=364)]
    ages += [timedelta(days=366)]
    docs = [
        record_doc(
            tenant_id=tenant.tenant_id,
            channel=Channel.PUSH if i % 2 else Channel.EMAIL,
            created_at=now - age,
            status=(Status.DELIVERED if i % 3 else Status.PROCESSING).value,
        )
        for i, age in enumerate(ages)
    ]
    assert system.db is not None
    await system.db.notifications.col.insert_many(docs)

    stats = await ok_rpc(tenant, "manage/get-notification-stats", {"days": 3})

    assert (stats["weeklySent"], stats["monthlySent"], stats["yearlySent"]) == (4, 6, 8)
    assert stats["days"] == 3
    dates = [(now - timedelta(days=d)).strftime("%Y-%m-%d") for d in (2, 1, 0)]
    assert [d["date"] for d in stats["daily"]] == dates
    expected: dict[str, dict[str, dict[str, int]]] = {d: {} for d in dates}
    for i, doc in enumerate(docs):
        day = doc["created_at"].strftime("%Y-%m-%d")
        if day in expected:
            result = "DELIVERED" if i % 3 else "SENT"
            cell = expected[day].setdefault("PUSH" if i % 2 else "EMAIL", {})
            cell[result] = cell.get(result, 0) + 1
    assert {d["date"]: d["channels"] for d in stats["daily"]} == expected
    assert sum(d["total"] for d in stats["daily"]) == sum(
        n for day in expected.values() for cell in day.values() for n in cell.values()
    )
    assert (await rpc(tenant, "manage/get-notification-stats", {"days": 0})).status_code == 400


@pytest.mark.parametrize("results", [["SENT"], ["CANCELLED", "DELIVERED"]])
async def test_a_page_deep_in_a_long_history_is_found(
    system: System, tenant: Tenant, results: list[str]
) -> None:
    # Records a second apart, then a long gap, then older ones: the windows must grow
    # across the gap and shrink their steps again where the records are dense.
    now = utcnow()
    statuses = {"SENT": Status.QUEUED, "CANCELLED": Status.CANCELLED, "DELIVERED": Status.DELIVERED}
    docs = []
    for i in range(40):
        age = timedelta(seconds=i) if i < 20 else timedelta(days=30, seconds=i)
        status = statuses[results[i % len(results)]]
        docs.append(
            record_doc(tenant_id=tenant.tenant_id, created_at=now - age, status=status.value)
        )
    assert system.db is not None
    await system.db.notifications.col.insert_many(docs)
    ids = await _all_pages(tenant, {"results": results}, 3)
    assert ids == [d["_id"] for d in docs]
