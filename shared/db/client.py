"""The MongoDB client for one process and the repositories built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.db.api_keys import ApiKeysRepo
from shared.db.circuits import CircuitsRepo
from shared.db.dead_letter_operations import DeadLetterOperationsRepo
from shared.db.digests import DigestActivityRepo, DigestsRepo
from shared.db.fanouts import FanoutsRepo
from shared.db.inbox import InboxRepo
from shared.db.inbox_streams import InboxStreamsRepo
from shared.db.notifications import NotificationActivity, NotificationsRepo, NotificationStats
from shared.db.outbox import DevOutboxRepo
from shared.db.providers import ProvidersRepo
from shared.db.rate_limits import RateLimitsRepo
from shared.db.receipts import ReceiptsRepo
from shared.db.subscribers import SubscribersRepo
from shared.db.suppressions import SuppressionsRepo
from shared.db.templates import TemplatesRepo
from shared.db.tenant_settings import TenantSettingsRepo
from shared.db.topics import TopicsRepo, TopicSubscriptionsRepo
from shared.db.webhooks import WebhookDeliveriesRepo, WebhooksRepo
from shared.db.workflows import WorkflowsRepo

Doc = dict[str, Any]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Database:
    """The client and one repository per collection."""

    client: AsyncMongoClient[Doc]
    db: AsyncDatabase[Doc]
    notifications: NotificationsRepo
    subscribers: SubscribersRepo
    templates: TemplatesRepo
    providers: ProvidersRepo
    api_keys: ApiKeysRepo
    inbox: InboxRepo
    dev_outbox: DevOutboxRepo
    dead_letter_operations: DeadLetterOperationsRepo
    suppressions: SuppressionsRepo
    inbox_streams: InboxStreamsRepo
    digests: DigestsRepo
    digest_activity: DigestActivityRepo
    rate_limits: RateLimitsRepo
    circuits: CircuitsRepo
    receipts: ReceiptsRepo
    webhooks: WebhooksRepo
    webhook_deliveries: WebhookDeliveriesRepo
    workflows: WorkflowsRepo
    tenant_settings: TenantSettingsRepo
    topics: TopicsRepo
    topic_subscriptions: TopicSubscriptionsRepo
    fanouts: FanoutsRepo
    activity: NotificationActivity
    stats: NotificationStats

    async def ensure_indexes(self) -> None:
        """Create every collection's indexes (idempotent)."""
        for repo in (
            self.notifications,
            self.subscribers,
            self.templates,
            self.providers,
            self.api_keys,
            self.inbox,
            self.dev_outbox,
            self.dead_letter_operations,
            self.suppressions,
            self.inbox_streams,
            self.digests,
            self.digest_activity,
            self.rate_limits,
            self.circuits,
            self.receipts,
            self.webhooks,
            self.webhook_deliveries,
            self.workflows,
            self.tenant_settings,
            self.topics,
            self.topic_subscriptions,
            self.fanouts,
        ):
            await repo.ensure_indexes()

    async def wait_ready(self, *, wait_s: float = 30.0) -> None:
        """Create the indexes, retrying while the server is unreachable (start-up order)."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(wait_s),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(ConnectionFailure),
            before_sleep=lambda state: log.warning(
                "database_unreachable", attempt=state.attempt_number
            ),
            reraise=True,
        ):
            with attempt:
                await self.ensure_indexes()

    async def ping(self) -> bool:
        """True when the server answers."""
        await self.client.admin.command("ping")
        return True

    async def close(self) -> None:
        """Close the client's pools."""
        await self.client.close()


def connect_database(
    *, url: str, name: str, timeout_ms: int, retry_writes: bool = False
) -> Database:
    """Build the client (lazy: no I/O until first use) and the repositories.

    `retry_writes` needs a replica set; a standalone or embedded server refuses it.
    """
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 3, 10_000),
        retryWrites=retry_writes,
    )
    db = client[name]
    subscribers = SubscribersRepo(db)
    return Database(
        client=client,
        db=db,
        notifications=NotificationsRepo(db),
        subscribers=subscribers,
        templates=TemplatesRepo(db),
        providers=ProvidersRepo(db),
        api_keys=ApiKeysRepo(db),
        inbox=InboxRepo(db),
        dev_outbox=DevOutboxRepo(db),
        dead_letter_operations=DeadLetterOperationsRepo(db),
        suppressions=SuppressionsRepo(db, subscribers=subscribers),
        inbox_streams=InboxStreamsRepo(db),
        digests=DigestsRepo(db),
        digest_activity=DigestActivityRepo(db),
        rate_limits=RateLimitsRepo(db),
        circuits=CircuitsRepo(db),
        receipts=ReceiptsRepo(db),
        webhooks=WebhooksRepo(db),
        webhook_deliveries=WebhookDeliveriesRepo(db),
        workflows=WorkflowsRepo(db),
        tenant_settings=TenantSettingsRepo(db),
        topics=TopicsRepo(db),
        topic_subscriptions=TopicSubscriptionsRepo(db),
        fanouts=FanoutsRepo(db),
        activity=NotificationActivity(db),
        stats=NotificationStats(db),
    )
