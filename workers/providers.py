"""Which adapter delivers a tenant's channel: configured providers, the inbox or the sandbox."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import structlog
from cryptography.fernet import InvalidToken

from shared.crypto import CredentialCipher
from shared.db.client import Database
from shared.domain import Channel, Environment
from shared.inbox.events import InboxAnnouncer
from shared.providers.base import Provider, ProviderConfig
from shared.providers.registry import build_adapter, spec_for
from shared.providers.sandbox import InAppProvider, SandboxProvider
from shared.providers.spec import AdapterResources, UnusableProvider

log = structlog.get_logger(__name__)

_CONFIG_TTL_S = 5.0  # a provider change reaches every worker within this long
DEVELOPMENT = Environment.DEVELOPMENT.value


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """An adapter and the config id recorded on the attempt (and keying its circuit)."""

    name: str
    adapter: Provider
    # The provider type (FCM, APNS, …); None for the sandbox and the inbox, which take any address.
    provider_type: str | None = None
    # Takes the whole subscriber once per notification, whatever its addresses (Novu).
    per_subscriber: bool = False
    environment: str = DEVELOPMENT

    @property
    def circuit_key(self) -> str:
        """What its circuit is keyed by (with the tenant): a config id names one config per
        environment, so a broken development config never opens production's circuit."""
        return self.name if self.environment == DEVELOPMENT else f"{self.environment}:{self.name}"


class ProviderResolver:
    """Builds adapters from stored configs and caches them per config version."""

    def __init__(
        self,
        *,
        db: Database,
        cipher: CredentialCipher,
        http: httpx.AsyncClient,
        timeout_s: float,
        sandbox_default: bool,
        inbox_announcer: InboxAnnouncer | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._resources = AdapterResources(http=http, timeout_s=timeout_s)
        self._sandbox = SandboxProvider(db.dev_outbox) if sandbox_default else None
        self._inbox = InAppProvider(db.inbox, inbox_announcer)
        self._configs: dict[tuple[str, str, str], tuple[float, list[ResolvedProvider]]] = {}
        self._adapters: dict[tuple[str, str, str, str], Provider] = {}

    async def for_channel(
        self, *, tenant_id: str, channel: Channel, environment: str = DEVELOPMENT
    ) -> list[ResolvedProvider]:
        """The environment's active providers, preferred first; empty when it has none."""
        key = (tenant_id, environment, channel.value)
        cached = self._configs.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        docs = await self._db.providers.active_for_channel(
            tenant_id=tenant_id, channel=channel.value, environment=environment
        )
        resolved = [self._adapter(doc, environment) for doc in docs]
        if channel is Channel.IN_APP:
            # Our own inbox, unless the tenant routes IN_APP through Novu's.
            resolved = resolved or [ResolvedProvider(name=self._inbox.name, adapter=self._inbox)]
        elif not resolved and self._sandbox is not None:
            resolved = [ResolvedProvider(name=self._sandbox.name, adapter=self._sandbox)]
        self._configs[key] = (now + _CONFIG_TTL_S, resolved)
        return resolved

    def _adapter(self, doc: dict[str, object], environment: str) -> ResolvedProvider:
        provider_type = str(doc["provider_type"])
        provider_id = str(doc.get("provider_id") or provider_type)
        version = str(doc.get("updated_at"))
        key = (str(doc["tenant_id"]), environment, provider_id, version)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._build(doc, provider_type=provider_type, version=version)
            self._adapters[key] = adapter
            log.info(
                "provider_loaded",
                provider=provider_id,
                provider_type=provider_type,
                tenant_id=str(doc["tenant_id"]),
                usable=not isinstance(adapter, UnusableProvider),
            )
        spec = spec_for(provider_type)
        return ResolvedProvider(
            name=provider_id,
            adapter=adapter,
            provider_type=provider_type,
            per_subscriber=spec is not None and spec.per_subscriber,
            environment=environment,
        )

    def _build(self, doc: dict[str, object], *, provider_type: str, version: str) -> Provider:
        try:
            credentials = self._cipher.decrypt(str(doc["credentials_enc"]))
        except InvalidToken:
            # Encrypted under another secret key: an operator fixes the key or re-configures;
            # until then every send reports it instead of the worker crashing on each message.
            return UnusableProvider(
                name=provider_type,
                reason="credentials_unreadable",
                detail="stored credentials cannot be decrypted with this secret key",
            )
        config = ProviderConfig(
            tenant_id=str(doc["tenant_id"]),
            provider_type=provider_type,
            credentials=credentials,
            endpoint=str(doc["endpoint"]) if doc.get("endpoint") else None,
            version=version,
        )
        return build_adapter(config=config, resources=self._resources)

    async def aclose(self) -> None:
        """Release every adapter built."""
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()
