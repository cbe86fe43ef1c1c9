"""Encryption at rest of provider credentials (Fernet, keys derived from the secret keys).

Rotation of `NOTIFY_SECRET_KEY` without downtime (docs/security.md): deploy the new key with
the old one in `NOTIFY_PREVIOUS_SECRET_KEYS`; every process then encrypts with the new key and
decrypts with either (`MultiFernet`). `notifyctl secrets reencrypt` rewrites what is stored
under an old key; once it reports nothing left, the old key can be dropped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(f"notify-credentials:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class CredentialCipher:
    """Encrypts credential dicts with the current key; decrypts with it or a previous one."""

    def __init__(self, secret_key: str, *, previous: Sequence[str] = ()) -> None:
        self._current = _fernet(secret_key)
        self._all = MultiFernet([self._current, *(_fernet(k) for k in previous)])

    def encrypt(self, credentials: dict[str, Any]) -> str:
        """Ciphertext of the JSON of `credentials`, under the current key."""
        return self._current.encrypt(orjson.dumps(credentials)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """The credentials back, whichever of the keys encrypted them."""
        value = orjson.loads(self._all.decrypt(token.encode()))
        assert isinstance(value, dict)
        return value

    def is_current(self, token: str) -> bool:
        """Whether `token` is already encrypted under the current key."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """`token` under the current key (raises `InvalidToken` if no key can read it)."""
        return self._all.rotate(token.encode()).decode()
