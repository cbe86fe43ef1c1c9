"""Seed RPCs not built yet answer 501 with their name, rather than a silent 404."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep
from api.openapi import COMMON, errors
from api.responses import JsonResponse

router = APIRouter(prefix="/api/v1/notifications", tags=["not built yet"], responses=COMMON)

NOT_BUILT = [
    "get-preferences",
    "update-preferences",
]


def _make(name: str) -> None:
    async def not_built(_: PrincipalDep) -> JsonResponse:
        return JsonResponse(
            {"success": False, "message": "Not implemented", "error": f"{name} is not built yet"},
            status_code=501,
        )

    router.add_api_route(
        f"/{name}",
        not_built,
        methods=["POST"],
        summary=f"{name} (not built yet)",
        responses=errors(501),
    )


for _name in NOT_BUILT:
    _make(_name)
