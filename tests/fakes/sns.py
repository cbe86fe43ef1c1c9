"""A fake Amazon SNS for SES receipts: its signing certificate, signed messages, and the
subscription-confirmation URL (which records the confirmation).

SNS signs a message's canonical string with RSA (SHA1 for SignatureVersion 1, SHA256 for 2)
and names its certificate in `SigningCertURL`; the fake serves a self-signed one locally.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer

__all__ = ["TOPIC_ARN", "FakeSns"]

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


_SIGNED = {
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


def canonical(message: dict[str, Any]) -> bytes:
    """What SNS signs (AWS's documented field order; written here apart from the verifier)."""
    return "".join(
        f"{name}\n{message[name]}\n" for name in _SIGNED[message["Type"]] if name in message
    ).encode()


class FakeSns(FakeServer):
    """Serves the certificate and the confirm URL; `notification()` builds signed messages."""

    def __init__(self) -> None:
        super().__init__()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = _certificate(self._key)
        self.confirmed: list[str] = []  # tokens of confirmed subscriptions

    def routes(self) -> list[BaseRoute]:
        """The certificate and the confirmation URL."""
        return [
            Route(CERT_PATH, self._cert, methods=["GET"]),
            Route("/confirm", self._confirm, methods=["GET"]),
        ]

    async def _cert(self, request: Request) -> Response:
        return await self._answer(
            request, route="cert", handle=lambda _: Response(self.pem, media_type="text/plain")
        )

    async def _confirm(self, request: Request) -> Response:
        token = request.query_params.get("Token", "")
        self.confirmed.append(token)
        return Response("<ConfirmSubscriptionResponse/>", media_type="text/xml")

    def sign(self, message: dict[str, Any], *, version: str = "2") -> dict[str, Any]:
        """The message with SignatureVersion, SigningCertURL and Signature set."""
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.url + CERT_PATH}
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self._key.sign(canonical(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(self, event: dict[str, Any], *, version: str = "2") -> dict[str, Any]:
        """A signed Notification carrying an SES event (`Message` as a JSON string)."""
        return self.sign(
            {
                "Type": "Notification",
                "MessageId": secrets.token_hex(16),
                "TopicArn": TOPIC_ARN,
                "Message": json.dumps(event),
                "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
            version=version,
        )

    def subscription_confirmation(self) -> dict[str, Any]:
        """A signed SubscriptionConfirmation pointing at the fake's confirm URL."""
        token = secrets.token_hex(8)
        return self.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": secrets.token_hex(16),
                "Token": token,
                "TopicArn": TOPIC_ARN,
                "Message": "You have chosen to subscribe to the topic.",
                "SubscribeURL": f"{self.url}/confirm?Action=ConfirmSubscription&Token={token}",
                "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )


def ses_event(
    kind: str, *, message_id: str, address: str, bounce_type: str = "Permanent"
) -> dict[str, Any]:
    """An SES event as SES publishes it to SNS."""
    mail = {"messageId": message_id, "destination": [address], "source": "noreply@acme.test"}
    event: dict[str, Any] = {"notificationType": kind, "mail": mail}
    if kind == "Bounce":
        event["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address}],
        }
    elif kind == "Complaint":
        event["complaint"] = {"complainedRecipients": [{"emailAddress": address}]}
    elif kind == "Delivery":
        event["delivery"] = {"recipients": [address]}
    return event
