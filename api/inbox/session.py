"""Inbox session tokens: signed (HS256), expiring JWTs naming one tenant's subscriber.

A browser or app holds one and uses it directly: `Authorization: Bearer <token>` on the inbox
RPCs, `?token=<token>` on the WebSocket. It reaches that subscriber's inbox and preferences
and nothing else: it is no API key, so every other route refuses it. The signing key is
derived from NOTIFY_SECRET_KEY, so rotating that secret ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import jwt

from shared.settings import Settings

ISSUER = "notify"
AUDIENCE = "notify-inbox"
TOKEN_TYPE = "inbox-session"
_LEEWAY_S = 5  # clock skew between API processes


@dataclass(frozen=True, slots=True)
class InboxSession:
    """Who a valid token acts for, and until when (epoch seconds)."""

    tenant_id: str
    subscriber_id: str
    environment: str
    expires_at: int


class SessionRejected(Exception):
    """A token that is malformed, forged, expired or not an inbox session."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


def looks_like_session_token(value: str) -> bool:
    """A JWT's shape (API keys never have it), so the right check answers."""
    return value.startswith("eyJ") and value.count(".") == 2


class SessionTokens:
    """Issues and verifies session tokens with one key."""

    def __init__(self, *, secret_key: str, ttl_s: int) -> None:
        self._key_bytes = hmac.new(
            secret_key.encode(), b"notify inbox session v1", hashlib.sha256
        ).digest()
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionTokens:
        """The deployment's tokens."""
        return cls(secret_key=settings.secret_key, ttl_s=settings.inbox_session_ttl_s)

    def issue(
        self,
        *,
        tenant_id: str,
        subscriber_id: str,
        environment: str,
        ttl_s: int | None = None,
        now: float | None = None,
    ) -> tuple[str, InboxSession]:
        """A new token and what it grants."""
        issued = int(now if now is not None else time.time())
        expires = issued + (self.ttl_s if ttl_s is None else ttl_s)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "typ": TOKEN_TYPE,
            "sub": subscriber_id,
            "tid": tenant_id,
            "env": environment,
            "iat": issued,
            "exp": expires,
        }
        token = jwt.encode(claims, self._key_bytes, algorithm="HS256")
        return token, InboxSession(
            tenant_id=tenant_id,
            subscriber_id=subscriber_id,
            environment=environment,
            expires_at=expires,
        )

    def verify(self, token: str) -> InboxSession:
        """What the token grants, or SessionRejected saying why not."""
        try:
            claims = jwt.decode(
                token,
                self._key_bytes,
                algorithms=["HS256"],  # never what the token's header says
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "tid", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise SessionRejected("session token expired", expired=True) from None
        except jwt.InvalidTokenError:
            raise SessionRejected("invalid session token") from None
        if claims.get("typ") != TOKEN_TYPE or not isinstance(claims.get("tid"), str):
            raise SessionRejected("invalid session token")
        return InboxSession(
            tenant_id=claims["tid"],
            subscriber_id=str(claims["sub"]),
            environment=str(claims.get("env") or "development"),
            expires_at=int(claims["exp"]),
        )
