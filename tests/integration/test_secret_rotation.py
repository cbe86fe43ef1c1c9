"""Rotating NOTIFY_SECRET_KEY without downtime: an API process with the new key and the old
one as previous reads what the old key wrote; `notifyctl secrets reencrypt` rewrites it so
the new key alone reads it; a second pass has nothing left to do."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.fernet import InvalidToken

from shared.crypto import CredentialCipher
from shared.db.client import Database, connect_database
from shared.settings import Settings
from tests.integration.api_processes import api_processes
from tests.integration.test_notifyctl import notifyctl
from tests.support import drop_database

OLD, NEW = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
CREDENTIALS = {"apiKey": "SG.secret", "fromEmail": "noreply@acme.test", "fromName": "Acme"}


@pytest.fixture
async def rotation_db(settings: Settings) -> AsyncIterator[tuple[Settings, Database]]:
    """A database of its own: rewriting keys must not touch the session's other tenants."""
    own = settings.model_copy(update={"database": f"{settings.database_name}_rot"})
    db = connect_database(url=own.mongodb_url, name=own.database_name, timeout_ms=3000)
    await db.ensure_indexes()
    try:
        yield own, db
    finally:
        await db.close()
        await drop_database(own.mongodb_url, own.database_name)


async def _store_sendgrid(db: Database, tenant_id: str, cipher: CredentialCipher) -> None:
    """A SendGrid config as configure-provider stores it, encrypted with `cipher`."""
    await db.providers.upsert(
        tenant_id=tenant_id,
        environment="development",
        provider_id="sendgrid",
        fields={
            "provider_type": "SENDGRID",
            "channel": "email",
            "active": True,
            "priority": 0,
            "credentials_enc": cipher.encrypt(CREDENTIALS),
            "credential_fields": sorted(CREDENTIALS),
        },
    )


async def _configs(base_url: str, key: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.post(
            "/api/v1/notifications/manage/get-providers",
            json={},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    providers: list[dict[str, object]] = response.json()["providers"]
    return providers


async def test_old_and_new_keys_both_read_until_reencrypted(
    rotation_db: tuple[Settings, Database],
) -> None:
    own, db = rotation_db
    old_only = CredentialCipher(OLD)
    for tenant in ("t1", "t2"):
        await _store_sendgrid(db, tenant, old_only)
    key = f"nk_test_{secrets.token_urlsafe(16)}"
    await db.api_keys.ensure(key=key, tenant_id="t1", scopes=["admin"], name="t")
    env = {"NOTIFY_DATABASE": own.database_name, "NOTIFY_SECRET_KEY": NEW}

    # The new key alone cannot read the old ciphertext: every field comes back masked.
    async with api_processes(own, 1, env=env) as (api,):
        masked = (await _configs(api.base_url, key))[0]["credentials"]
    assert masked == {k: "********" for k in CREDENTIALS}
    # With the old key as previous, the same process reads it (no downtime while rotating).
    rotating = {**env, "NOTIFY_PREVIOUS_SECRET_KEYS": OLD}
    async with api_processes(own, 1, env=rotating) as (api,):
        readable = (await _configs(api.base_url, key))[0]["credentials"]
    assert isinstance(readable, dict)
    assert readable["fromEmail"] == "noreply@acme.test"

    first = await notifyctl(own, "secrets", "reencrypt", "--json", **rotating)
    assert first.code == 0, first.stderr
    assert first.json == {
        "rewritten": 2,
        "alreadyCurrent": 0,
        "changedMeanwhile": 0,
        "unreadable": [],
    }
    new_only = CredentialCipher(NEW)
    for doc in await db.providers.list_configs(
        tenant_id="t1", environment=None, include_inactive=True
    ):
        assert new_only.decrypt(str(doc["credentials_enc"])) == CREDENTIALS
        with pytest.raises(InvalidToken):
            old_only.decrypt(str(doc["credentials_enc"]))
    again = await notifyctl(own, "secrets", "reencrypt", "--json", **rotating)
    assert again.json["rewritten"] == 0
    assert again.json["alreadyCurrent"] == 2
    # The old key can go now.
    async with api_processes(own, 1, env=env) as (api,):
        after = (await _configs(api.base_url, key))[0]["credentials"]
    assert isinstance(after, dict)
    assert after["fromEmail"] == "noreply@acme.test"


async def test_credentials_no_key_can_read_are_reported(
    rotation_db: tuple[Settings, Database],
) -> None:
    own, db = rotation_db
    await _store_sendgrid(db, "t9", CredentialCipher("lost"))
    run = await notifyctl(
        own,
        "secrets",
        "reencrypt",
        "--json",
        NOTIFY_DATABASE=own.database_name,
        NOTIFY_SECRET_KEY=NEW,
        NOTIFY_PREVIOUS_SECRET_KEYS=OLD,
    )
    assert run.code == 1
    assert run.json["unreadable"] == ["t9/sendgrid"]
