"""Resources built once at start-up and shared by every request (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from shared.crypto import CredentialCipher
from shared.db.client import Database
from shared.messaging.broker import Broker
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
    key_cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
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

    @property
    def is_admin(self) -> bool:
        """Admin keys may call /manage/."""
        return "admin" in self.scopes
