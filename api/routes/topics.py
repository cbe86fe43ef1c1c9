"""Seed 000's topic RPCs under `manage/` (plus `list-topics`), `manage/send-to-topic`, and
`manage/list-transaction-recipients` (docs/audience.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import AppContext
from api.deps import AdminDep, CtxDep
from api.openapi import COMMON, errors
from api.topic_schemas import (
    CheckTopicSubscriptionRequest,
    CreateTopicRequest,
    ListTopicsRequest,
    ListTopicSubscribersRequest,
    SendToTopicRequest,
    TopicKeyRequest,
    TopicSubscribersRequest,
    TransactionRecipientsRequest,
)
from api.topic_sends import fanout_document
from api.topic_views import recipient_row, topic_view
from shared.db.base import Doc
from shared.db.notifications.transactions import statuses_of
from shared.errors import NotFound
from shared.timefmt import iso_z

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["topics"], responses=COMMON)


async def existing_topic(ctx: AppContext, tenant_id: str, key: str) -> Doc:
    """The topic of this key, or 404."""
    topic = await ctx.db.topics.get(tenant_id=tenant_id, key=key)
    if topic is None:
        raise NotFound(f"topic {key} does not exist")
    return topic


def _page(items: list[Any], *, key: str, page: int, page_size: int, total: int) -> dict[str, Any]:
    return {
        key: items,
        "page": page,
        "pageSize": page_size,
        "totalCount": total,
        "hasMore": page * page_size < total,
    }


@router.post("/create-topic", summary="Create a topic", responses=errors(409))
async def create_topic(
    body: CreateTopicRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """409 if the key exists."""
    doc = await ctx.db.topics.create(
        tenant_id=principal.tenant_id, key=body.topicKey, name=body.name
    )
    return {"topic": topic_view(doc)}


@router.post("/delete-topic", summary="Delete a topic", responses=errors(404))
async def delete_topic(body: TopicKeyRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """The key is free at once; its subscriptions are removed now, or by the last fan-out of
    the topic still running when it finishes (running fan-outs reach their whole audience)."""
    tenant_id = principal.tenant_id
    topic = await ctx.db.topics.delete(tenant_id=tenant_id, key=body.topicKey)
    if topic is None:
        raise NotFound(f"topic {body.topicKey} does not exist")
    running = await ctx.db.fanouts.active_for_topic(tenant_id=tenant_id, topic_id=topic["_id"])
    removed = 0
    if not running:
        removed = await ctx.db.topic_subscriptions.delete_topic(
            tenant_id=tenant_id, topic_id=topic["_id"]
        )
    return {
        "deleted": True,
        "topicKey": body.topicKey,
        "subscriptionsRemoved": removed,
        "runningFanouts": running,
    }


@router.post("/list-topics", summary="List topics")
async def list_topics(body: ListTopicsRequest, ctx: CtxDep, principal: AdminDep) -> dict[str, Any]:
    """A page, in key order."""
    items, total = await ctx.db.topics.list_page(
        tenant_id=principal.tenant_id, page=body.page, page_size=body.pageSize
    )
    return _page(
        [topic_view(d) for d in items],
        key="topics",
        page=body.page,
        page_size=body.pageSize,
        total=total,
    )


@router.post(
    "/add-subscribers-to-topic", summary="Subscribe up to 100 users", responses=errors(404)
)
async def add_subscribers(
    body: TopicSubscribersRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Only existing subscribers are subscribed; the others are listed as unknown."""
    tenant_id = principal.tenant_id
    topic = await existing_topic(ctx, tenant_id, body.topicKey)
    ids = list(dict.fromkeys(body.subscriberIds))
    known = await ctx.db.subscribers.get_many(tenant_id=tenant_id, subscriber_ids=ids)
    candidates = [i for i in ids if i in known]
    already = await ctx.db.topic_subscriptions.subscribed_among(
        tenant_id=tenant_id, topic_id=topic["_id"], subscriber_ids=candidates
    )
    fresh = [i for i in candidates if i not in already]
    added: list[str] = []
    if fresh:
        first = await ctx.db.topics.reserve_seq(
            tenant_id=tenant_id, topic_id=topic["_id"], count=len(fresh)
        )
        if first is None:
            raise NotFound(f"topic {body.topicKey} does not exist")
        added = await ctx.db.topic_subscriptions.add(
            tenant_id=tenant_id, topic_id=topic["_id"], first_seq=first, subscriber_ids=fresh
        )
    return {
        "topicKey": body.topicKey,
        "added": added,
        "alreadySubscribed": [i for i in candidates if i not in set(added)],
        "unknownSubscribers": [i for i in ids if i not in known],
    }


@router.post(
    "/remove-subscribers-from-topic", summary="Unsubscribe up to 100 users", responses=errors(404)
)
async def remove_subscribers(
    body: TopicSubscribersRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The ids that were subscribed are removed; the others are listed as not subscribed, or
    as unknown when they are no subscriber at all."""
    tenant_id = principal.tenant_id
    topic = await existing_topic(ctx, tenant_id, body.topicKey)
    ids = list(dict.fromkeys(body.subscriberIds))
    removed = await ctx.db.topic_subscriptions.remove(
        tenant_id=tenant_id, topic_id=topic["_id"], subscriber_ids=ids
    )
    rest = [i for i in ids if i not in set(removed)]
    known = await ctx.db.subscribers.get_many(tenant_id=tenant_id, subscriber_ids=rest)
    return {
        "topicKey": body.topicKey,
        "removed": removed,
        "notSubscribed": [i for i in rest if i in known],
        "unknownSubscribers": [i for i in rest if i not in known],
    }


@router.post("/list-topic-subscribers", summary="List a topic's subscribers", responses=errors(404))
async def list_topic_subscribers(
    body: ListTopicSubscribersRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """A page, in subscription order."""
    tenant_id = principal.tenant_id
    topic = await existing_topic(ctx, tenant_id, body.topicKey)
    items, total = await ctx.db.topic_subscriptions.list_page(
        tenant_id=tenant_id, topic_id=topic["_id"], page=body.page, page_size=body.pageSize
    )
    rows = [
        {"subscriberId": d["subscriber_id"], "subscribedAt": iso_z(d.get("created_at"))}
        for d in items
    ]
    return _page(rows, key="subscribers", page=body.page, page_size=body.pageSize, total=total)


@router.post("/check-topic-subscription", summary="Is a user subscribed?", responses=errors(404))
async def check_topic_subscription(
    body: CheckTopicSubscriptionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """`{subscribed}`; 404 for a topic that does not exist."""
    topic = await existing_topic(ctx, principal.tenant_id, body.topicKey)
    subscribed = await ctx.db.topic_subscriptions.is_subscribed(
        tenant_id=principal.tenant_id, topic_id=topic["_id"], subscriber_id=body.subscriberId
    )
    return {"subscribed": subscribed}


@router.post("/send-to-topic", summary="Send to a topic's subscribers", responses=errors(404))
async def send_to_topic(
    body: SendToTopicRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """Answers once the fan-out is stored and its message confirmed; the fan-out worker then
    creates one notification per subscriber (but `excludeUserIds`)."""
    topic = await existing_topic(ctx, principal.tenant_id, body.topicKey)
    doc = fanout_document(
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        topic=topic,
        correlation_id=request.state.correlation_id,
        idempotency_key=f"topic:{body.idempotencyKey}" if body.idempotencyKey else None,
        exclude=body.excludeUserIds,
        body=body,
    )
    stored, _ = await ctx.pipeline.submit_fanout(doc)
    return {"transactionId": stored["_id"]}


@router.post(
    "/list-transaction-recipients",
    summary="Page through a transaction's recipients",
    responses=errors(404),
)
async def list_transaction_recipients(
    body: TransactionRecipientsRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """Creation order; `result` keeps only the recipients with that delivery result."""
    tenant_id = principal.tenant_id
    items, total = await ctx.db.notifications.transaction_page(
        tenant_id=tenant_id,
        transaction_id=body.transactionId,
        statuses=statuses_of(body.result) if body.result else None,
        page=body.page,
        page_size=body.pageSize,
    )
    if not total and not items:
        fanout = await ctx.db.fanouts.get(tenant_id=tenant_id, fanout_id=body.transactionId)
        if fanout is None and not await _has_records(ctx, tenant_id, body.transactionId):
            raise NotFound(f"transaction {body.transactionId} does not exist")
    return _page(
        [recipient_row(r) for r in items],
        key="recipients",
        page=body.page,
        page_size=body.pageSize,
        total=total,
    )


async def _has_records(ctx: AppContext, tenant_id: str, transaction_id: str) -> bool:
    _, total = await ctx.db.notifications.transaction_page(
        tenant_id=tenant_id, transaction_id=transaction_id, statuses=None, page=1, page_size=1
    )
    return total > 0
