"""The `api_keys` collection: hashed keys, their tenant and scopes."""

from __future__ import annotations

import hashlib

from pymongo import IndexModel

from shared.db.base import Doc, Repo, utcnow


def hash_key(key: str) -> str:
    """SHA-256 of a key: keys are long random tokens, so no slow KDF is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeysRepo(Repo):
    """Keys are looked up by hash; the plain key is never stored."""

    collection_name = "api_keys"

    async def ensure_indexes(self) -> None:
        """Unique hash; list by tenant."""
        await self.col.create_indexes(
            [
                IndexModel([("key_hash", 1)], unique=True, name="key_hash"),
                IndexModel([("tenant_id", 1)]),
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
    ) -> None:
        """Make `key` valid for `tenant_id` in `environment` with exactly these scopes."""
        await self.col.update_one(
            {"key_hash": hash_key(key)},
            {
                "$set": {
                    "tenant_id": tenant_id,
                    "scopes": scopes,
                    "name": name,
                    "environment": environment,
                    "revoked": False,
                },
                "$setOnInsert": {"created_at": utcnow()},
            },
            upsert=True,
        )

    async def find(self, *, key: str) -> Doc | None:
        """The unrevoked key record for a presented key."""
        return await self.col.find_one({"key_hash": hash_key(key), "revoked": {"$ne": True}})
