"""A tenant's stored provider configs of one type, credentials decrypted (for calls besides
sends: receipt verification, Novu mirroring and sessions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken

from shared.crypto import CredentialCipher
from shared.db.providers import ProvidersRepo


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """One config: its id, endpoint, channels served, whether active, and its credentials."""

    provider_id: str
    provider_type: str
    endpoint: str | None
    channels: tuple[str, ...]
    active: bool
    credentials: dict[str, Any]


async def configs_of_type(
    *,
    providers: ProvidersRepo,
    cipher: CredentialCipher,
    tenant_id: str,
    provider_type: str,
    include_inactive: bool = False,
    environment: str | None = None,
) -> list[StoredConfig]:
    """The tenant's configs of `provider_type` (in one environment, or in any), preferred
    first; unreadable ones left out."""
    docs = await providers.list_configs(
        tenant_id=tenant_id, environment=environment, include_inactive=include_inactive
    )
    found: list[StoredConfig] = []
    for doc in sorted(docs, key=lambda d: (d.get("priority", 0), str(d.get("provider_id")))):
        if doc.get("provider_type") != provider_type:
            continue
        try:
            credentials = cipher.decrypt(str(doc["credentials_enc"]))
        except (KeyError, InvalidToken):
            continue
        channel = doc.get("channel")
        found.append(
            StoredConfig(
                provider_id=str(doc.get("provider_id") or provider_type),
                provider_type=provider_type,
                endpoint=str(doc["endpoint"]) if doc.get("endpoint") else None,
                channels=tuple(
                    str(c) for c in (channel if isinstance(channel, list) else [channel])
                ),
                active=bool(doc.get("active")),
                credentials=credentials,
            )
        )
    return found
