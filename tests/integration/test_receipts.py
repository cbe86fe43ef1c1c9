"""Delivery receipts end to end: signed (and forged) SendGrid, Twilio and SES/SNS requests,
each event kind, duplicates and out-of-order events, bounce → suppression → the next send
refused without a provider call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.fakes.ses import FakeSes
from tests.fakes.sns import FakeSns, ses_event
from tests.fakes.twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.integration.helpers import configure, ok_rpc, send_and_wait
from tests.support import System, Tenant, wait_for

EMAIL = "ada@example.com"
PHONE = "+14155550100"


class SendGridSigner:
    """The Event Webhook's key pair: the console shows the public half, SendGrid signs."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        signature = self._key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "Content-Type": "application/json",
        }


@pytest.fixture
async def sns() -> AsyncIterator[FakeSns]:
    """A fake SNS (certificate and confirm URL) on 127.0.0.1."""
    async with FakeSns() as fake:
        yield fake


@pytest.fixture
async def hooks(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no API key: receipts are authenticated by signature alone."""
    async with httpx.AsyncClient(base_url=system.base_url, timeout=10) as client:
        yield client


async def _subscriber(tenant: Tenant, user: str, **data: Any) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user, "subscriberData": data})


async def _record(tenant: Tenant, transaction_id: str) -> dict[str, Any]:
    """The one notification of a `manage/send` transaction, as the API shows it."""
    [notification_id] = _ids[transaction_id]
    response = await tenant.client.get(f"/api/v1/notifications/{notification_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


_ids: dict[str, list[str]] = {}  # transaction id -> notification ids, filled by _send


async def _send(system: System, tenant: Tenant, user: str, channel: str) -> dict[str, Any]:
    status = await send_and_wait(tenant, user, channel)
    assert system.db is not None
    records = await system.db.notifications.find_by_transaction(
        tenant_id=tenant.tenant_id, transaction_id=status["transactionId"]
    )
    _ids[status["transactionId"]] = [r.id for r in records]
    return status


async def _stored(system: System, tenant: Tenant, transaction_id: str) -> dict[str, Any]:
    assert system.db is not None
    [notification_id] = _ids[transaction_id]
    doc = await system.db.notifications.col.find_one(
        {"_id": notification_id, "tenant_id": tenant.tenant_id}
    )
    assert doc is not None
    return doc


async def _applied(system: System, tenant: Tenant, count: int) -> None:
    assert system.db is not None
    db = system.db

    async def done() -> bool:
        total = await db.receipts.count(tenant_id=tenant.tenant_id)
        applied = await db.receipts.count(tenant_id=tenant.tenant_id, applied_at={"$exists": True})
        return total == applied == count

    await wait_for(done, timeout_s=15, what=f"{count} receipts applied")


def _sg_event(kind: str, status: dict[str, Any], *, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{status['providerMessageId']}.filterdrecv-1234-1",
        "tenant_id": tenant.tenant_id,
        **extra,
    }


async def _sendgrid_tenant(
    system: System, tenant: Tenant, sendgrid: FakeSendGrid, signer: SendGridSigner
) -> dict[str, Any]:
    await configure(
        tenant,
        "SENDGRID",
        sendgrid.url,
        {
            "apiKey": DEFAULT_API_KEY,
            "fromEmail": "noreply@acme.test",
            "webhookPublicKey": signer.public_key,
        },
    )
    await _subscriber(tenant, "u1", email=EMAIL)
    status = await _send(system, tenant, "u1", "EMAIL")
    assert status["result"] == "DELIVERED"
    return status


async def _post_sendgrid(
    hooks: httpx.AsyncClient, signer: SendGridSigner, events: list[dict[str, Any]], **kw: Any
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await hooks.post("/webhooks/sendgrid", content=body, headers=signer.headers(body), **kw)


async def test_sendgrid_delivered_then_bounce_suppresses_and_the_next_send_is_refused(
    tenant: Tenant, sendgrid: FakeSendGrid, system: System, hooks: httpx.AsyncClient
) -> None:
    signer = SendGridSigner()
    status = await _sendgrid_tenant(system, tenant, sendgrid, signer)
    txn = status["transactionId"]

    answer = await _post_sendgrid(
        hooks,
        signer,
        [
            _sg_event("processed", status, tenant=tenant),
            _sg_event("delivered", status, tenant=tenant, response="250 OK"),
            _sg_event("open", status, tenant=tenant),
        ],
    )
    assert (answer.status_code, answer.json()) == (200, {"received": 3})
    await _applied(system, tenant, 3)
    record = await _record(tenant, txn)
    assert (record["status"], record["confirmed_at"] is not None) == ("delivered", True)

    bounce = _sg_event("bounce", status, tenant=tenant, type="bounce", reason="550 No such user")
    assert (await _post_sendgrid(hooks, signer, [bounce])).status_code == 200
    await _applied(system, tenant, 4)
    record = await _record(tenant, txn)
    assert record["status"] == "invalid_credential"
    assert record["failure_reason"] == "bounced:SENDGRID:bounce"
    listed = await ok_rpc(tenant, "manage/list-suppressions", {"channel": "EMAIL"})
    [entry] = listed["suppressions"]
    assert (entry["address"], entry["reason"], entry["source"]) == (
        EMAIL,
        "hard_bounce",
        "SENDGRID:bounce",
    )
    stored = await _stored(system, tenant, txn)
    assert [r["kind"] for r in stored["receipts"]] == ["other", "delivered", "other", "hard_bounce"]

    calls = len(sendgrid.requests)
    again = await send_and_wait(tenant, "u1", "EMAIL")
    assert (again["result"], again["failureReason"]) == ("INVALID_CREDENTIAL", "suppressed")
    assert len(sendgrid.requests) == calls  # refused without a provider call


async def test_sendgrid_forged_or_unsigned_is_401_and_changes_nothing(
    tenant: Tenant, sendgrid: FakeSendGrid, system: System, hooks: httpx.AsyncClient
) -> None:
    signer = SendGridSigner()
    status = await _sendgrid_tenant(system, tenant, sendgrid, signer)
    bounce = [_sg_event("bounce", status, tenant=tenant, type="bounce")]
    body = json.dumps(bounce).encode()

    forged = await hooks.post(
        "/webhooks/sendgrid", content=body, headers=SendGridSigner().headers(body)
    )
    tampered = await hooks.post(
        "/webhooks/sendgrid",
        content=body.replace(b"bounce", b"delivered"),
        headers=signer.headers(body),
    )
    unsigned = await hooks.post("/webhooks/sendgrid", content=body)

    assert [r.status_code for r in (forged, tampered, unsigned)] == [401, 401, 401]
    assert forged.json()["error"] == "the SendGrid signature does not verify"
    assert system.db is not None
    assert await system.db.receipts.count(tenant_id=tenant.tenant_id) == 0
    assert (await _record(tenant, status["transactionId"]))["status"] == "delivered"


async def test_duplicates_and_out_of_order_events_change_nothing_twice(
    tenant: Tenant, sendgrid: FakeSendGrid, system: System, hooks: httpx.AsyncClient
) -> None:
    signer = SendGridSigner()
    status = await _sendgrid_tenant(system, tenant, sendgrid, signer)
    txn = status["transactionId"]
    earlier = int(time.time()) - 60
    bounce = _sg_event("dropped", status, tenant=tenant, reason="Invalid")
    late_delivered = _sg_event("delivered", status, tenant=tenant, timestamp=earlier)

    # The bounce arrives first, then an older `delivered`, then the bounce again (a retry).
    for batch in ([bounce], [late_delivered], [bounce], [bounce, late_delivered]):
        assert (await _post_sendgrid(hooks, signer, batch)).status_code == 200
    await _applied(system, tenant, 2)

    record = await _record(tenant, txn)
    assert (record["status"], record["confirmed_at"]) == ("invalid_credential", None)
    stored = await _stored(system, tenant, txn)
    assert [r["kind"] for r in stored["receipts"]] == ["hard_bounce", "delivered"]
    listed = await ok_rpc(tenant, "manage/list-suppressions", {})
    assert listed["totalCount"] == 1


async def test_sendgrid_soft_events_go_to_history_only(
    tenant: Tenant, sendgrid: FakeSendGrid, system: System, hooks: httpx.AsyncClient
) -> None:
    signer = SendGridSigner()
    status = await _sendgrid_tenant(system, tenant, sendgrid, signer)
    events = [
        _sg_event("deferred", status, tenant=tenant, response="421 try later"),
        _sg_event("bounce", status, tenant=tenant, type="blocked", reason="blocked for now"),
    ]
    assert (await _post_sendgrid(hooks, signer, events)).status_code == 200
    await _applied(system, tenant, 2)

    record = await _record(tenant, status["transactionId"])
    assert record["status"] == "delivered"
    stored = await _stored(system, tenant, status["transactionId"])
    assert [(r["kind"], r["event"]) for r in stored["receipts"]] == [
        ("soft", "deferred"),
        ("soft", "bounce"),
    ]
    assert (await ok_rpc(tenant, "manage/list-suppressions", {}))["totalCount"] == 0


async def test_an_event_for_an_unknown_message_is_answered_200(
    tenant: Tenant, sendgrid: FakeSendGrid, hooks: httpx.AsyncClient, system: System
) -> None:
    signer = SendGridSigner()
    await _sendgrid_tenant(system, tenant, sendgrid, signer)
    unknown = {
        "email": "nobody@example.com",
        "timestamp": int(time.time()),
        "event": "delivered",
        "sg_event_id": "unknown-1",
        "sg_message_id": "not-ours.filter",
    }
    answer = await hooks.post(
        f"/webhooks/sendgrid?tenant={tenant.tenant_id}",
        content=json.dumps([unknown]).encode(),
        headers=signer.headers(json.dumps([unknown]).encode()),
    )
    assert answer.status_code == 200
    assert system.db is not None
    assert await system.db.receipts.count(tenant_id=tenant.tenant_id) == 1


def _twilio_sign(url: str, form: dict[str, str], token: str = DEFAULT_AUTH_TOKEN) -> str:
    # Twilio's documented algorithm, written out here apart from the API's verifier.
    data = url + "".join(k + form[k] for k in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


async def test_twilio_status_callbacks(
    tenant: Tenant, twilio: FakeTwilio, system: System, hooks: httpx.AsyncClient
) -> None:
    callback = f"{system.base_url}/webhooks/twilio?tenant={tenant.tenant_id}"
    await configure(tenant, "TWILIO", twilio.url, twilio.credentials(statusCallbackUrl=callback))
    await _subscriber(tenant, "u1", phone=PHONE)
    status = await _send(system, tenant, "u1", "SMS")
    assert twilio.messages[0]["StatusCallback"] == callback
    sid = status["providerMessageId"]

    async def post(form: dict[str, str], signature: str | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers["X-Twilio-Signature"] = signature or _twilio_sign(callback, form)
        return await hooks.post(callback, content=urlencode(form), headers=headers)

    base = {"MessageSid": sid, "AccountSid": "AC" + "f" * 32, "To": PHONE, "From": "+15005550006"}
    sent = await post({**base, "MessageStatus": "sent"})
    forged = await post({**base, "MessageStatus": "undelivered", "ErrorCode": "30005"}, "Zm9yZ2Vk")
    assert (sent.status_code, forged.status_code) == (200, 401)
    delivered = await post({**base, "MessageStatus": "delivered"})
    assert delivered.status_code == 200
    await _applied(system, tenant, 2)
    assert (await _record(tenant, status["transactionId"]))["confirmed_at"] is not None

    # Another message to a number that turns out dead: 30005 unknown handset.
    dead = await _send(system, tenant, "u1", "SMS")
    await post(
        {
            **base,
            "MessageSid": dead["providerMessageId"],
            "MessageStatus": "undelivered",
            "ErrorCode": "30005",
        }
    )
    await _applied(system, tenant, 3)
    assert (await _record(tenant, dead["transactionId"]))["status"] == "invalid_credential"
    [entry] = (await ok_rpc(tenant, "manage/list-suppressions", {}))["suppressions"]
    assert (entry["channel"], entry["address"], entry["source"]) == (
        "SMS",
        PHONE,
        "TWILIO:undelivered",
    )
    calls = len(twilio.requests)
    refused = await send_and_wait(tenant, "u1", "SMS")
    assert refused["result"] == "INVALID_CREDENTIAL"
    assert len(twilio.requests) == calls


async def test_twilio_without_tenant_or_config_is_401(
    tenant: Tenant, hooks: httpx.AsyncClient
) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    no_tenant = await hooks.post("/webhooks/twilio", data=form)
    no_config = await hooks.post(
        f"/webhooks/twilio?tenant={tenant.tenant_id}",
        data=form,
        headers={"X-Twilio-Signature": "x"},
    )
    assert (no_tenant.status_code, no_config.status_code) == (401, 401)


async def test_ses_through_sns(
    tenant: Tenant, ses: FakeSes, sns: FakeSns, system: System, hooks: httpx.AsyncClient
) -> None:
    await configure(tenant, "SES", ses.url, ses.credentials())
    await _subscriber(tenant, "u1", email=EMAIL)
    url = f"/webhooks/ses?tenant={tenant.tenant_id}"

    confirm = await hooks.post(url, json=sns.subscription_confirmation())
    assert (confirm.status_code, len(sns.confirmed)) == (200, 1)

    first = await _send(system, tenant, "u1", "EMAIL")
    delivery = sns.notification(
        ses_event("Delivery", message_id=first["providerMessageId"], address=EMAIL), version="1"
    )
    transient = sns.notification(
        ses_event(
            "Bounce",
            message_id=first["providerMessageId"],
            address=EMAIL,
            bounce_type="Transient",
        )
    )
    for message in (delivery, transient, delivery):
        assert (await hooks.post(url, json=message)).status_code == 200
    await _applied(system, tenant, 2)
    record = await _record(tenant, first["transactionId"])
    assert (record["status"], record["confirmed_at"] is not None) == ("delivered", True)

    second = await _send(system, tenant, "u1", "EMAIL")
    bounce = sns.notification(
        ses_event("Bounce", message_id=second["providerMessageId"], address=EMAIL)
    )
    forged = {**bounce, "Message": bounce["Message"].replace("Permanent", "Transient")}
    assert (await hooks.post(url, json=forged)).status_code == 401
    assert (await hooks.post(url, json=bounce)).status_code == 200
    await _applied(system, tenant, 3)
    assert (await _record(tenant, second["transactionId"]))["status"] == "invalid_credential"
    refused = await send_and_wait(tenant, "u1", "EMAIL")
    assert (refused["result"], refused["failureReason"]) == ("INVALID_CREDENTIAL", "suppressed")


async def test_ses_certificate_from_a_host_not_allowed_is_401(
    tenant: Tenant, sns: FakeSns, hooks: httpx.AsyncClient
) -> None:
    message = sns.notification(ses_event("Delivery", message_id="m1", address=EMAIL))
    message["SigningCertURL"] = "https://sns.evil.example/cert.pem"
    answer = await hooks.post(f"/webhooks/ses?tenant={tenant.tenant_id}", json=message)
    assert answer.status_code == 401
    assert answer.json()["error"] == "SigningCertURL is not an allowed SNS certificate URL"
    assert sns.requests == []  # nothing was fetched
