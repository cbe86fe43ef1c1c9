"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver verifies.

A secret is `whsec_` + base64 of 32 random bytes. Each request carries `webhook-id`,
`webhook-timestamp` (unix seconds) and `webhook-signature`: space-separated `v1,<base64
HMAC-SHA256 of "<id>.<timestamp>.<body>" under the secret's bytes>` — one per secret in use, so
a receiver keeps verifying while a rotated secret's grace period runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret, shown to the tenant once."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a request."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(
    secrets_in_use: Sequence[str], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a signed request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_in_use
        ),
    }


def verify(secret: str, *, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True when one of the header's signatures is this secret's (for tests and receivers)."""
    expected = signature(secret, msg_id=msg_id, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, given) for given in header.split())
