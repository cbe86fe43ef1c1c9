"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.deps import CtxDep
from api.openapi import errors
from api.responses import JsonResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the event loop runs."""
    return {"status": "ok"}


@router.get("/ready", summary="RabbitMQ and MongoDB are reachable", responses=errors(503))
async def ready(ctx: CtxDep) -> JsonResponse:
    """503 naming what is down."""
    checks: dict[str, str] = {}
    checks["rabbitmq"] = "ok" if await ctx.broker.is_healthy() else "down: no open connection"
    try:
        async with asyncio.timeout(3):
            await ctx.db.ping()
        checks["mongodb"] = "ok"
    except Exception as exc:  # any failure to answer means not ready
        checks["mongodb"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    down = [name for name, v in checks.items() if v != "ok"]
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks, "down": down},
        status_code=200 if ok else 503,
    )
