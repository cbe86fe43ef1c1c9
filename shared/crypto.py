"""Encryption at rest of provider credentials (Fernet, key derived from the secret key)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.fernet import Fernet


class CredentialCipher:
    """Encrypts and decrypts credential dicts."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(f"notify-credentials:{secret_key}".encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, credentials: dict[str, Any]) -> str:
        """Ciphertext of the JSON of `credentials`."""
        return self._fernet.encrypt(orjson.dumps(credentials)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """The credentials back."""
        value = orjson.loads(self._fernet.decrypt(token.encode()))
        assert isinstance(value, dict)
        return value
