"""APNs' side of auth: the credential model tenants configure, and the ES256 provider token.

Apple refuses a provider token older than an hour (`ExpiredProviderToken`) and one refreshed more
often than every 20 minutes (`TooManyProviderTokenUpdates`), so one token is signed per adapter
and reused for 50 minutes; a token Apple calls expired is re-signed at once (`renew`).
"""

from __future__ import annotations

import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, field_validator

from shared.providers.spec import CredentialModel, RequiredText

# Reused this long: past Apple's 20-minute floor, well before its hour runs out.
TOKEN_LIFETIME_S = 50 * 60


def load_p8_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key of a `.p8` file; ValueError (never quoting it) when it is not one."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("must be the .p8 private key (PEM) Apple issued") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be an ES256 (P-256) key as Apple issues for APNs")
    return key


class ApnsCredentials(CredentialModel):
    """`{keyId, teamId, privateKey, bundleId, production}`: token-based APNs auth."""

    key_id: RequiredText = Field(alias="keyId")
    team_id: RequiredText = Field(alias="teamId")
    private_key: RequiredText = Field(alias="privateKey", repr=False)
    bundle_id: RequiredText = Field(alias="bundleId")
    production: bool = True

    @field_validator("private_key")
    @classmethod
    def _p8(cls, value: str) -> str:
        load_p8_key(value)  # refused at configure time, not at the first send
        return value


class ProviderTokens:
    """One signing key's provider token, signed on demand and shared by every send."""

    def __init__(
        self, credentials: ApnsCredentials, *, lifetime_s: float = TOKEN_LIFETIME_S
    ) -> None:
        self._key = load_p8_key(credentials.private_key)
        self._key_id = credentials.key_id
        self._team_id = credentials.team_id
        self._lifetime_s = lifetime_s
        self._token: str | None = None
        self._issued_at = 0.0

    def get(self) -> str:
        """The current token, signed anew once it is `lifetime_s` old (signing takes ~0.1 ms)."""
        now = time.time()
        if self._token is None or now - self._issued_at >= self._lifetime_s:
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._issued_at = now
        return self._token

    def renew(self, refused: str) -> None:
        """Forget a token Apple called expired, unless another send already replaced it."""
        if self._token == refused:
            self._token = None
