"""Rewriting encrypted fields under the current secret key (`notifyctl secrets reencrypt`).

Each document is rewritten with a conditional update on the ciphertext it was read with, so
a config changed meanwhile (configure-provider) is left as its writer made it; running the
command again finishes whatever is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken

from shared.crypto import CredentialCipher
from shared.db.providers import ProvidersRepo


@dataclass
class ReencryptReport:
    """What one pass did."""

    rewritten: int = 0
    current: int = 0  # already under the current key
    changed_meanwhile: int = 0
    unreadable: list[str] = field(default_factory=list)  # "tenant/provider" no key can read


async def reencrypt_provider_credentials(
    repo: ProvidersRepo, cipher: CredentialCipher
) -> ReencryptReport:
    """Every provider config's credentials under the current key."""
    report = ReencryptReport()
    async for doc in repo.col.find({"credentials_enc": {"$exists": True}}):
        token = str(doc["credentials_enc"])
        if cipher.is_current(token):
            report.current += 1
            continue
        try:
            fresh = cipher.reencrypt(token)
        except InvalidToken:
            report.unreadable.append(f"{doc.get('tenant_id')}/{doc.get('provider_id')}")
            continue
        result = await repo.col.update_one(
            {"_id": doc["_id"], "credentials_enc": token}, {"$set": {"credentials_enc": fresh}}
        )
        if result.modified_count:
            report.rewritten += 1
        else:
            report.changed_meanwhile += 1
    return report
