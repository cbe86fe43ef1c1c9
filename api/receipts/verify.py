"""Signature checks of provider receipts; each raises `Unauthorized` naming what is wrong.

- SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `timestamp + raw body`, base64 DER
  signature in `X-Twilio-Email-Event-Webhook-Signature`, the key (base64 DER, as SendGrid's
  console shows it) in the tenant's SENDGRID config (`webhookPublicKey`).
- Twilio status callbacks: `X-Twilio-Signature` = base64 HMAC-SHA1, under the account's auth
  token, of the public URL Twilio called followed by the form's sorted name+value pairs.
- SNS (SES events): RSA over the message's canonical string (SHA1 for SignatureVersion 1,
  SHA256 for 2), with the certificate at `SigningCertURL`, fetched only from URLs matching the
  allowed pattern (NOTIFY_SNS_CERT_URL_PATTERN) and cached per URL.

The exact raw body is verified, never re-serialised JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from shared.errors import Unauthorized
from shared.providers.sendgrid import event_webhook_key

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized(f"{what} is not base64") from None


def verify_sendgrid(*, body: bytes, headers: Mapping[str, str], public_keys: Sequence[str]) -> None:
    """Pass if one of the tenant's keys signed `timestamp + body`."""
    signature, timestamp = headers.get(SENDGRID_SIGNATURE), headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        raise Unauthorized("the request is not signed (Event Webhook signing is off?)")
    if not public_keys:
        raise Unauthorized("no SENDGRID config of this tenant has a webhookPublicKey")
    raw = _b64(signature, "the signature")
    for text in public_keys:
        try:
            event_webhook_key(text).verify(
                raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
            )
            return
        except (InvalidSignature, ValueError):
            continue
    raise Unauthorized("the SendGrid signature does not verify")


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's signature of a form POST to `url`."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list[str]:
    # Twilio signs the URL as configured; proxies add or drop a default port.
    match = re.match(r"^(https?)://([^/:]+)(:\d+)?(.*)$", url)
    if not match:
        return [url]
    scheme, host, _port, rest = match.groups()
    default = ":443" if scheme == "https" else ":80"
    return list(
        dict.fromkeys([url, f"{scheme}://{host}{rest}", f"{scheme}://{host}{default}{rest}"])
    )


def verify_twilio(
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    auth_tokens: Sequence[str],
) -> None:
    """Pass if one of the tenant's Twilio auth tokens signed this URL and form."""
    given = headers.get(TWILIO_SIGNATURE)
    if not given:
        raise Unauthorized(f"the request has no {TWILIO_SIGNATURE}")
    if not auth_tokens:
        raise Unauthorized("this tenant has no TWILIO config")
    for token in auth_tokens:
        for candidate in _with_and_without_port(url):
            if hmac.compare_digest(twilio_signature(token, candidate, params), given):
                return
    raise Unauthorized("the Twilio signature does not verify")


_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SNS_FIELDS["UnsubscribeConfirmation"] = _SNS_FIELDS["SubscriptionConfirmation"]


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical string SNS signs: `Name\\nvalue\\n` for each field present, in order."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise Unauthorized(f"unknown SNS message type {message.get('Type')!r}")
    text = ""
    for name in fields:
        value = message.get(name)
        if value is None:
            continue
        if not isinstance(value, str):  # a test double may send Message as an object
            raise Unauthorized(f"SNS field {name} is not a string")
        text += f"{name}\n{value}\n"
    return text.encode()


class SnsVerifier:
    """Checks SNS signatures, fetching each signing certificate once."""

    def __init__(self, *, http: httpx.AsyncClient, url_pattern: str, timeout_s: float) -> None:
        self._http = http
        self._pattern = re.compile(url_pattern)
        self._timeout = timeout_s
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def allowed(self, url: str) -> bool:
        """Whether `url` may be fetched as an SNS URL (certificate, subscription confirm)."""
        return bool(self._pattern.match(url))

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is not None:
            return key
        if not self.allowed(url):
            raise Unauthorized("SigningCertURL is not an allowed SNS certificate URL")
        try:
            response = await self._http.get(url, timeout=self._timeout)
            response.raise_for_status()
            public = x509.load_pem_x509_certificate(response.content).public_key()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unauthorized(f"the SNS signing certificate cannot be read: {exc}") from None
        if not isinstance(public, rsa.RSAPublicKey):
            raise Unauthorized("the SNS signing certificate holds no RSA key")
        self._keys[url] = public
        return public

    async def verify(self, message: Mapping[str, Any]) -> None:
        """Pass if SNS signed this message."""
        version = str(message.get("SignatureVersion") or "")
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # SNS SignatureVersion 1 is SHA1withRSA
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise Unauthorized(f"unknown SNS SignatureVersion {version!r}")
        signature = message.get("Signature")
        cert_url = message.get("SigningCertURL")
        if not isinstance(signature, str) or not isinstance(cert_url, str):
            raise Unauthorized("the SNS message is not signed")
        key = await self._key(cert_url)
        try:
            key.verify(
                _b64(signature, "the SNS signature"),
                sns_string_to_sign(message),
                padding.PKCS1v15(),
                algorithm,
            )
        except InvalidSignature:
            raise Unauthorized("the SNS signature does not verify") from None
