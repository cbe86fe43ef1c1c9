"""The `api_keys` collection: hashed keys, their tenant, scopes, environment and limits."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING, IndexModel, ReturnDocument

from shared.db.base import Doc, Repo, utcnow

KEY_PREFIX_CHARS = 10  # what `list-api-keys` shows of a key: "nk_" and 7 random characters


def hash_key(key: str) -> str:
    """SHA-256 of a key: keys are long random tokens, so no slow KDF is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_for(key_hash: str) -> str:
    """The public id of a key: derived from its hash, so keys made before ids existed have one."""
    return f"key_{key_hash[:16]}"


def new_key() -> str:
    """A fresh key: 256 random bits."""
    return "nk_" + secrets.token_urlsafe(32)


def is_usable(doc: Doc, *, now: datetime) -> bool:
    """Not revoked and not expired (a rotated key expires when its grace period ends)."""
    if doc.get("revoked"):
        return False
    expires_at = doc.get("expires_at")
    return expires_at is None or expires_at > now


class ApiKeysRepo(Repo):
    """Keys are looked up by hash; the plain key is never stored."""

    collection_name = "api_keys"

    async def ensure_indexes(self) -> None:
        """Unique hash; list by tenant."""
        await self.col.create_indexes(
            [
                IndexModel([("key_hash", 1)], unique=True, name="key_hash"),
                IndexModel([("tenant_id", 1)]),
                IndexModel([("tenant_id", 1), ("key_id", 1)], name="tenant_key_id"),
            ]
        )

    async def ensure(
        self,
        *,
        key: str,
        tenant_id: str,
        scopes: list[str],
        name: str,
        environment: str = "development",
        rate_limit: int | None = None,
    ) -> None:
        """Make `key` exist for `tenant_id` in `environment` with exactly these scopes.

        A key revoked since stays revoked: restarting with the same bootstrap key must not
        bring it back.
        """
        key_hash = hash_key(key)
        await self.col.update_one(
            {"key_hash": key_hash},
            {
                "$set": {
                    "tenant_id": tenant_id,
                    "key_id": key_id_for(key_hash),
                    "prefix": key[:KEY_PREFIX_CHARS],
                    "scopes": scopes,
                    "name": name,
                    "environment": environment,
                    "rate_limit": rate_limit,
                },
                "$setOnInsert": {"created_at": utcnow()},
            },
            upsert=True,
        )

    async def create(
        self,
        *,
        tenant_id: str,
        name: str,
        scopes: list[str],
        environment: str,
        expires_at: datetime | None,
        rate_limit: int | None,
        rotated_from: str | None = None,
    ) -> tuple[str, Doc]:
        """A new key for the tenant: the plain key (shown once) and its stored record."""
        key = new_key()
        key_hash = hash_key(key)
        doc: Doc = {
            "key_hash": key_hash,
            "key_id": key_id_for(key_hash),
            "prefix": key[:KEY_PREFIX_CHARS],
            "tenant_id": tenant_id,
            "name": name,
            "scopes": scopes,
            "environment": environment,
            "expires_at": expires_at,
            "rate_limit": rate_limit,
            "revoked": False,
            "created_at": utcnow(),
        }
        if rotated_from:
            doc["rotated_from"] = rotated_from
        await self.col.insert_one(doc)
        return key, doc

    async def find(self, *, key: str) -> Doc | None:
        """The usable key record for a presented key (not revoked, not expired)."""
        doc = await self.col.find_one({"key_hash": hash_key(key), "revoked": {"$ne": True}})
        if doc is None or not is_usable(doc, now=utcnow()):
            return None
        return doc

    async def get(self, *, tenant_id: str, key_id: str) -> Doc | None:
        """One of the tenant's keys by id."""
        return await self.col.find_one({"tenant_id": tenant_id, "key_id": key_id})

    async def list_for_tenant(self, *, tenant_id: str, include_inactive: bool) -> list[Doc]:
        """The tenant's keys, newest first; revoked and expired ones only when asked."""
        cursor = self.col.find({"tenant_id": tenant_id}).sort("created_at", DESCENDING)
        docs = [d async for d in cursor]
        if include_inactive:
            return docs
        now = utcnow()
        return [d for d in docs if is_usable(d, now=now)]

    async def revoke(self, *, tenant_id: str, key_id: str) -> Doc | None:
        """Revoke at once; None when the tenant has no such key."""
        return await self.col.find_one_and_update(
            {"tenant_id": tenant_id, "key_id": key_id},
            {"$set": {"revoked": True, "revoked_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def rotate(
        self, *, tenant_id: str, key_id: str, grace_s: int
    ) -> tuple[str, Doc, Doc] | None:
        """A successor with the same name, scopes, environment and limit; the old key keeps
        working for `grace_s` more seconds (never longer than it would have anyway).

        Returns (new plain key, new record, old record), or None when the old key is unknown
        or no longer usable.
        """
        old = await self.get(tenant_id=tenant_id, key_id=key_id)
        now = utcnow()
        if old is None or not is_usable(old, now=now):
            return None
        key, new = await self.create(
            tenant_id=tenant_id,
            name=str(old.get("name") or "key"),
            scopes=list(old.get("scopes", [])),
            environment=str(old.get("environment") or "development"),
            expires_at=old.get("expires_at"),
            rate_limit=old.get("rate_limit"),
            rotated_from=key_id,
        )
        grace_end = now + timedelta(seconds=grace_s)
        current_end = old.get("expires_at")
        update: dict[str, Any] = {"rotated_to": new["key_id"], "rotated_at": now}
        update["expires_at"] = min(grace_end, current_end) if current_end else grace_end
        updated = await self.col.find_one_and_update(
            {"_id": old["_id"]}, {"$set": update}, return_document=ReturnDocument.AFTER
        )
        return key, new, updated or old
