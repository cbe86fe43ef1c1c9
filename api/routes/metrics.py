"""`GET /metrics`: Prometheus metrics of this API process (every process's, in multiprocess
mode), with the broker's queue figures refreshed when they are older than their cache."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CtxDep
from shared import metrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(ctx: CtxDep) -> Response:
    """The text exposition format; no credentials (scrape it on a private network)."""
    await ctx.queue_stats.read()
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
