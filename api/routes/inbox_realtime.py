"""The inbox WebSocket (`wsUrl`), the drop-in widget's script and, in dev mode, its demo page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, WebSocket
from fastapi.responses import FileResponse, HTMLResponse

from api.context import AppContext
from api.inbox.hub import RealtimeHub
from api.inbox.session import SessionRejected, SessionTokens
from api.inbox.socket import CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, InboxSocket
from api.routes.inbox import WS_PATH

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["inbox"])
demo_router = APIRouter(tags=["dev"])


@router.websocket(WS_PATH)
async def inbox_socket(
    websocket: WebSocket, token: str | None = None, after: str | None = None
) -> None:
    """`?token=<sessionToken>[&after=<seq>]`: events after `seq`, in order, then live ones.

    Refusals are a close after the handshake, so a browser can read the code: 4401 for a
    missing, bad or expired token, 4400 for a bad `after`.
    """
    await websocket.accept()
    ctx: AppContext = websocket.app.state.ctx
    hub: RealtimeHub = websocket.app.state.inbox_hub
    if not token:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="session token required")
        return
    try:
        session = SessionTokens.from_settings(ctx.settings).verify(token)
    except SessionRejected as exc:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=exc.reason)
        return
    cursor: int | None = None
    if after is not None:
        if not after.isdigit() or len(after) > 18:
            await websocket.close(code=CLOSE_BAD_REQUEST, reason="after must be a whole number")
            return
        cursor = int(after)
    await InboxSocket(
        websocket=websocket,
        db=ctx.db,
        hub=hub,
        session=session,
        after=cursor,
        heartbeat_s=ctx.settings.inbox_heartbeat_s,
    ).serve()


@router.get(
    "/inbox/inbox.js",
    summary="The drop-in inbox widget (one script, no build step)",
    response_class=FileResponse,
    responses={200: {"content": {"text/javascript": {}}, "description": "The script"}},
)
async def inbox_script() -> FileResponse:
    """`<script src=".../inbox/inbox.js">` then `NotifyInbox.mount(element, {session})`."""
    return FileResponse(
        STATIC / "inbox.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


@demo_router.get(
    "/inbox/demo",
    summary="Dev mode: the widget, live, for one user",
    response_class=HTMLResponse,
)
async def inbox_demo() -> HTMLResponse:
    """A page that gets a session with an admin key and a user id, and mounts the widget."""
    return HTMLResponse((STATIC / "inbox-demo.html").read_text(encoding="utf-8"))
