"""What a worker process builds once at start-up and passes to every handler (arq's `ctx`)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from shared.crypto import CredentialCipher
from shared.db.client import Database, connect_database
from shared.inbox.events import InboxAnnouncer
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.pipeline import SendPipeline
from shared.settings import Settings
from shared.webhooks.events import WebhookEvents
from workers.providers import ProviderResolver


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """Settings and every shared resource; all of them open for the context's whole life."""

    settings: Settings
    db: Database
    broker: Broker
    http: httpx.AsyncClient
    resolver: ProviderResolver
    pipeline: SendPipeline
    process_id: str  # host:pid:random, prefixed to every claim this process makes
    webhook_events: WebhookEvents  # announces state changes to tenants with webhooks


async def connect_services(settings: Settings) -> tuple[Database, Broker]:
    """The database (indexes ensured) and the broker (topology declared), each retried at start."""
    db = connect_database(
        url=settings.mongodb_url,
        name=settings.database_name,
        timeout_ms=settings.mongo_timeout_ms,
        retry_writes=settings.retry_writes,
    )
    await db.wait_ready()
    broker = Broker(
        url=settings.rabbitmq_url,
        topology=Topology(settings.prefix, quorum=settings.quorum_queues),
        publish_timeout_s=settings.publish_timeout_s,
    )
    await broker.connect()
    return db, broker


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[WorkerContext]:
    """Connect everything; close it all, last opened first, when the block ends."""
    async with AsyncExitStack() as stack:
        db, broker = await connect_services(settings)
        stack.push_async_callback(db.close)
        stack.push_async_callback(broker.close)
        # DESIGN.md §8: httpx grows expensive above ~32 requests in flight per client.
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            timeout=settings.provider_timeout_s,
        )
        stack.push_async_callback(http.aclose)
        resolver = ProviderResolver(
            db=db,
            cipher=CredentialCipher(settings.secret_key, previous=settings.previous_secrets),
            http=http,
            timeout_s=settings.provider_timeout_s,
            sandbox_default=settings.sandbox_default,
            inbox_announcer=InboxAnnouncer(
                streams=db.inbox_streams, broker=broker, keep=settings.inbox_events_kept
            ),
        )
        stack.push_async_callback(resolver.aclose)
        yield WorkerContext(
            settings=settings,
            db=db,
            broker=broker,
            http=http,
            resolver=resolver,
            pipeline=SendPipeline(db=db, broker=broker),
            process_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            webhook_events=WebhookEvents(
                webhooks=db.webhooks, broker=broker, ttl_s=settings.webhooks_cache_ttl_s
            ),
        )
