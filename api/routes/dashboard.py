"""The ops dashboard: `GET /dashboard` (a static page, no data in it), its assets, and
`manage/get-dashboard-stats`, the small JSON endpoint it polls besides the dead-letter RPCs.

The page and assets are public: nothing secret is in them; the operator signs in with an
API key that the page keeps in session storage. The charting library (uPlot) is vendored
under `api/dashboard/vendor/` at a pinned version (`VENDORED`), so nothing is fetched from a
CDN at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CtxDep, ManageDep
from api.errors import envelope_error
from api.openapi import COMMON
from api.schemas import EmptyRequest

router = APIRouter(tags=["operations"])

ASSETS_DIR = Path(__file__).resolve().parent.parent / "dashboard"
# npm package uplot@1.6.32 (MIT), dist/ files; the test checks these digests.
VENDORED = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_ASSETS = {
    "dashboard.js": ASSETS_DIR / "dashboard.js",
    "dashboard.css": ASSETS_DIR / "dashboard.css",
    **{name: ASSETS_DIR / "vendor" / name for name in VENDORED},
}
# Scripts and styles from this origin only; the page talks to this API alone.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(path: Path) -> Response:
    return Response(
        path.read_bytes(),
        media_type=_TYPES.get(path.suffix, "application/octet-stream"),
        headers=_SECURITY_HEADERS,
    )


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> Response:
    """The page; it asks for an admin key and keeps it in session storage."""
    return _file(ASSETS_DIR / "index.html")


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    """One of the page's scripts or styles (a fixed list: no path reaches the file system)."""
    path = _ASSETS.get(name)
    if path is None:
        return envelope_error(404, "Not found", [f"no dashboard asset named {name}"])
    return _file(path)


@router.post(
    "/api/v1/notifications/manage/get-dashboard-stats",
    summary="The ops dashboard's figures for the last hour",
    responses=COMMON,
)
async def get_dashboard_stats(
    body: EmptyRequest, ctx: CtxDep, principal: ManageDep
) -> dict[str, Any]:
    """Per channel: created and finished per minute; per provider config: attempts and
    latency; the latest failures; open circuits; broker queues for the operator tenant."""
    return await ctx.dashboard_stats.for_tenant(ctx, tenant_id=principal.tenant_id)
