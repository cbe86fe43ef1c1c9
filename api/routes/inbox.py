"""Seed 000's inbox RPCs: the session, the feed, counts, marks and deletes (docs/inbox.md).

Every change is announced after it is stored (a numbered event in the subscriber's stream,
then a wake-up), so the subscriber's other sockets see it, on whichever API process.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import AppContext, Principal
from api.deps import CtxDep, InboxUserDep, UserDep
from api.inbox.novu_session import novu_session
from api.inbox.session import SessionTokens
from api.inbox.views import counts_view, feed_item
from api.inbox_schemas import (
    DeleteInboxMessageRequest,
    InboxFeedRequest,
    MarkAllInboxMessagesRequest,
    MarkInboxMessageRequest,
)
from api.openapi import COMMON, errors
from api.schemas import EmptyRequest
from shared.db.base import Doc
from shared.db.inbox import InboxStatus, status_of
from shared.errors import NotFound
from shared.ids import new_id
from shared.inbox.events import EventKind, InboxAnnouncer, item_event, marked_event
from shared.settings import Settings
from shared.webhooks.events import INBOX_READ

router = APIRouter(prefix="/api/v1/notifications", tags=["inbox"], responses=COMMON)

WS_PATH = "/api/v1/notifications/inbox/ws"


def public_urls(settings: Settings, request: Request) -> tuple[str, str]:
    """(apiUrl, wsUrl): from the public-URL settings, else the address the request came to."""
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    if settings.public_ws_url:
        return base, settings.public_ws_url
    scheme, rest = base.split(":", 1)
    return base, ("wss" if scheme == "https" else "ws") + ":" + rest + WS_PATH


def native_session(*, ctx: AppContext, user: Principal, request: Request) -> dict[str, Any]:
    """A session of our own inbox: a signed token, and where to use it."""
    assert user.user_id is not None
    token, _ = SessionTokens.from_settings(ctx.settings).issue(
        tenant_id=user.tenant_id, subscriber_id=user.user_id, environment=user.environment
    )
    api_url, ws_url = public_urls(ctx.settings, request)
    return {"sessionToken": token, "apiUrl": api_url, "wsUrl": ws_url}


async def _webhook_read(ctx: AppContext, user: Principal, docs: list[Doc]) -> None:
    """`inbox.read` for the tenant's webhooks (only published if it has endpoints)."""
    events = ctx.webhook_events
    if events is None:
        return
    for doc in docs:
        message_id = str(doc["_id"])
        await events.emit(
            tenant_id=user.tenant_id,
            event_type=INBOX_READ,
            event_id=f"{message_id}:{INBOX_READ}",
            data={
                "messageId": message_id,
                "notificationId": doc.get("notification_id"),
                "userId": user.user_id,
                "feedId": doc.get("feed_id"),
            },
        )


def _announcer(ctx: AppContext) -> InboxAnnouncer:
    return InboxAnnouncer(
        streams=ctx.db.inbox_streams, broker=ctx.broker, keep=ctx.settings.inbox_events_kept
    )


async def _announce(ctx: AppContext, user: Principal, event: Doc) -> None:
    assert user.user_id is not None
    await _announcer(ctx).announce(
        tenant_id=user.tenant_id, subscriber_id=user.user_id, events=[event]
    )


@router.post("/get-inbox-session", summary="A session token for the inbox RPCs and WebSocket")
async def get_inbox_session(
    body: EmptyRequest, ctx: CtxDep, user: UserDep, request: Request
) -> dict[str, Any]:
    """`{sessionToken, apiUrl, wsUrl}`: the token expires after NOTIFY_INBOX_SESSION_TTL_S.

    For a tenant whose IN_APP route is Novu, Novu's own session (docs/novu.md), so Novu's
    inbox clients keep working.
    """
    novu = await novu_session(ctx=ctx, user=user)
    return novu if novu is not None else native_session(ctx=ctx, user=user, request=request)


@router.post("/get-inbox-feed", summary="The calling user's inbox, newest first")
async def get_inbox_feed(body: InboxFeedRequest, ctx: CtxDep, user: InboxUserDep) -> dict[str, Any]:
    """`{messages, hasMore}`; `feedIds` and `categories` narrow it."""
    assert user.user_id is not None
    docs = await ctx.db.inbox.page(
        tenant_id=user.tenant_id,
        subscriber_id=user.user_id,
        feed_ids=body.feedIds,
        categories=list(body.categories) if body.categories else None,
        skip=(body.page - 1) * body.pageSize,
        limit=body.pageSize + 1,
    )
    return {
        "messages": [feed_item(d) for d in docs[: body.pageSize]],
        "hasMore": len(docs) > body.pageSize,
    }


@router.post("/get-inbox-unseen-count", summary="Unseen and unread counts")
async def get_inbox_unseen_count(
    body: EmptyRequest, ctx: CtxDep, user: InboxUserDep
) -> dict[str, int]:
    """`{unseenCount, unreadCount}`, each counted on an index."""
    assert user.user_id is not None
    unseen, unread = await ctx.db.inbox.counts(tenant_id=user.tenant_id, subscriber_id=user.user_id)
    return counts_view(unseen, unread)


@router.post("/mark-inbox-message", summary="Mark one message", responses=errors(404))
async def mark_inbox_message(
    body: MarkInboxMessageRequest, ctx: CtxDep, user: InboxUserDep
) -> dict[str, Any]:
    """SEEN, READ (also seen), UNSEEN (clears both), UNREAD (clears read) → its new status."""
    assert user.user_id is not None
    marked = await ctx.db.inbox.mark(
        tenant_id=user.tenant_id,
        subscriber_id=user.user_id,
        message_id=body.messageId,
        status=InboxStatus(body.status),
    )
    if marked is None:
        raise NotFound(f"message {body.messageId} does not exist")
    doc, _ = marked
    # Announced even when nothing changed: a retry after a 503 then stores the event.
    await _announce(ctx, user, item_event(EventKind.UPDATED, body.messageId))
    if body.status == "READ":
        await _webhook_read(ctx, user, [doc])
    return {"messageId": body.messageId, "status": status_of(doc)}


@router.post("/mark-all-inbox-messages", summary="Mark every message (of some feeds)")
async def mark_all_inbox_messages(
    body: MarkAllInboxMessagesRequest, ctx: CtxDep, user: InboxUserDep
) -> dict[str, Any]:
    """`{updatedCount}`: how many messages changed."""
    assert user.user_id is not None
    count = await ctx.db.inbox.mark_all(
        tenant_id=user.tenant_id,
        subscriber_id=user.user_id,
        status=InboxStatus(body.status),
        feed_ids=body.feedIds,
    )
    await _announce(ctx, user, marked_event(status=body.status, feed_ids=body.feedIds, count=count))
    if body.status == "READ" and count and ctx.webhook_events is not None:
        await ctx.webhook_events.emit(
            tenant_id=user.tenant_id,
            event_type=INBOX_READ,
            event_id=new_id("evt"),
            data={"userId": user.user_id, "all": True, "feedIds": body.feedIds, "count": count},
        )
    return {"updatedCount": count}


@router.post("/delete-inbox-message", summary="Delete one message", responses=errors(404))
async def delete_inbox_message(
    body: DeleteInboxMessageRequest, ctx: CtxDep, user: InboxUserDep
) -> dict[str, Any]:
    """Idempotent for the owner; another user's or tenant's message is a 404."""
    assert user.user_id is not None
    found = await ctx.db.inbox.delete(
        tenant_id=user.tenant_id, subscriber_id=user.user_id, message_id=body.messageId
    )
    if not found:
        raise NotFound(f"message {body.messageId} does not exist")
    await _announce(ctx, user, item_event(EventKind.DELETED, body.messageId))
    return {"messageId": body.messageId, "deleted": True}
