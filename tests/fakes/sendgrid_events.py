"""Sign and post SendGrid Event Webhook events, as SendGrid would (a local trial).

    python -m tests.fakes.sendgrid_events keygen --out .data/sendgrid-events.pem
        writes a P-256 key and prints `{"webhookPublicKey": …}` for the SENDGRID config
    python -m tests.fakes.sendgrid_events post --key .data/sendgrid-events.pem \\
        --url http://127.0.0.1:8000/webhooks/sendgrid --event bounce \\
        --message-id <providerMessageId> --email ada@example.com [--tenant default]
        signs one event (ECDSA over timestamp + body) and posts it; prints the answer
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def keygen(out: Path) -> None:
    """A new key pair: the private half to `out`, the public half printed."""
    key = ec.generate_private_key(ec.SECP256R1())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    print(json.dumps({"webhookPublicKey": base64.b64encode(der).decode()}))


def post(args: argparse.Namespace) -> int:
    """Sign one event and post it."""
    key = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    event = {
        "email": args.email,
        "timestamp": int(time.time()),
        "event": args.event,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{args.message_id}.filterdrecv-trial",
    }
    if args.event == "bounce":
        event.update(type="bounce", reason="550 5.1.1 The email account does not exist")
    body = json.dumps([event]).encode()
    ts = str(int(time.time()))
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    url = args.url + (f"?tenant={args.tenant}" if args.tenant else "")
    response = httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        },
    )
    print(response.status_code, response.text)
    return 0 if response.is_success else 1


def main(argv: list[str] | None = None) -> None:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.sendgrid_events")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("keygen")
    gen.add_argument("--out", type=Path, required=True)
    send = commands.add_parser("post")
    send.add_argument("--key", required=True)
    send.add_argument("--url", required=True)
    send.add_argument("--event", default="bounce")
    send.add_argument("--message-id", required=True)
    send.add_argument("--email", required=True)
    send.add_argument("--tenant", default="default")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        keygen(args.out)
        return
    sys.exit(post(args))


if __name__ == "__main__":
    main()
