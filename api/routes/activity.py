"""Seed 000's `manage/get-notification-activity` and seed 002's statistics
(`manage/get-notification-stats`), for dashboards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.activity_schemas import ActivityRequest, StatsRequest
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON
from api.workflow_presenters import activity_view, stats_view
from shared.db.notifications.activity import ActivityFilter, statuses_for_results
from shared.domain import Channel

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["activity"], responses=COMMON)


def activity_filter(body: ActivityRequest) -> ActivityFilter:
    """The request's filters in stored values."""
    return ActivityFilter(
        channels=tuple(Channel.from_api(c).value for c in body.channels or []),
        categories=tuple(body.categories or []),
        statuses=statuses_for_results(list(body.results or [])),
        user_id=body.userId,
        transaction_id=body.transactionId,
        start=body.startTime,
        end=body.endTime,
    )


@router.post("/get-notification-activity", summary="Query delivery history")
async def get_notification_activity(
    body: ActivityRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Newest first, one row per notification; every filter rides an index (see
    shared.db.notifications.activity). Without `startTime`, the last 366 days."""
    docs, has_more = await ctx.db.activity.page(
        tenant_id=principal.tenant_id,
        flt=activity_filter(body),
        skip=(body.page - 1) * body.pageSize,
        limit=body.pageSize,
    )
    return {
        "activities": [activity_view(d) for d in docs],
        "page": body.page,
        "pageSize": body.pageSize,
        "hasMore": has_more,
    }


@router.post("/get-notification-stats", summary="Notifications sent per week, month, year, day")
async def get_notification_stats(
    body: StatsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Seed 002's `weeklySent`, `monthlySent`, `yearlySent` (the last 7, 30 and 365 days),
    and for each of the last `days` days the count per channel and result. Up to 15 s old."""
    stats = await ctx.db.stats.stats(tenant_id=principal.tenant_id, days=body.days)
    return stats_view(stats)
