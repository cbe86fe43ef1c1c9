"""Resources built once at start-up and shared by every request (no globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from api.dashboard_stats import DashboardStats
from api.ratelimit import RateLimiter
from shared.crypto import CredentialCipher
from shared.db.client import Database
from shared.messaging.broker import Broker
from shared.messaging.queue_stats import QueueStats
from shared.pipeline import SendPipeline
from shared.settings import Settings
from shared.webhooks.events import WebhookEvents

if TYPE_CHECKING:
    from api.receipts.verify import SnsVerifier


@dataclass(slots=True)
class AppContext:
    """What every handler needs: settings, database, broker, cipher, the send pipeline."""

    settings: Settings
    db: Database
    broker: Broker
    cipher: CredentialCipher
    pipeline: SendPipeline
    rate_limiter: RateLimiter
    queue_stats: QueueStats
    key_cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
    key_lookups: dict[str, asyncio.Future[Principal | None]] = field(default_factory=dict)
    dashboard_stats: DashboardStats = field(default_factory=DashboardStats)
    # Outbound calls the API makes itself (SNS certificates, Novu inbox sessions).
    http: httpx.AsyncClient | None = None
    webhook_events: WebhookEvents | None = None
    sns: SnsVerifier | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, the key's scopes, and the user a gateway named."""

    tenant_id: str
    scopes: frozenset[str]
    user_id: str | None = None
    via_gateway: bool = False
    key_label: str | None = None  # names the key in audit trails: its name and hash prefix
    # Which of the tenant's environments the key acts in (`development` or `production`):
    # workflows, templates and provider configs live per environment.
    environment: str = "development"
    key_id: str | None = None  # the key's public id; None for gateway callers (no rate limit)
    rate_limit: int | None = None  # the key's own budget per window; None: the default
    expires_at: datetime | None = None  # a rotated or expiring key stops working then

    @property
    def is_admin(self) -> bool:
        """Admin keys may call /manage/."""
        return "admin" in self.scopes
