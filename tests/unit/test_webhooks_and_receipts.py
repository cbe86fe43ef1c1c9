"""Pure parts of receipts and outbound webhooks: signatures, event kinds, the per-tenant cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, cast

import httpx
import pytest

from api.receipts.parse import (
    COMPLAINT,
    DELIVERED,
    HARD_BOUNCE,
    OTHER,
    SOFT,
    sendgrid_receipts,
    ses_receipts,
    twilio_receipts,
)
from api.receipts.verify import SnsVerifier, sns_string_to_sign, twilio_signature, verify_twilio
from shared.db.webhooks import WebhooksRepo
from shared.domain import Status
from shared.errors import Unauthorized
from shared.messaging.broker import Broker
from shared.webhooks.events import (
    DELIVERED as DELIVERED_EVENT,
)
from shared.webhooks.events import (
    FAILED,
    OPTED_OUT,
    WebhookEvents,
    event_for_status,
)
from shared.webhooks.signing import new_secret, sign_headers, signature, verify


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example in the Standard Webhooks specification.
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_two_secrets_sign_side_by_side() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_")
    assert len(base64.b64decode(old.removeprefix("whsec_"))) == 32
    headers = sign_headers([new, old], msg_id="m1", timestamp=1700000000, body=b"{}")
    assert headers["webhook-id"] == "m1"
    assert headers["webhook-timestamp"] == "1700000000"
    header = headers["webhook-signature"]
    assert len(header.split()) == 2
    for secret in (old, new):
        assert verify(secret, msg_id="m1", timestamp=1700000000, body=b"{}", header=header)
    assert not verify(new_secret(), msg_id="m1", timestamp=1700000000, body=b"{}", header=header)
    assert not verify(new, msg_id="m1", timestamp=1700000000, body=b"{ }", header=header)


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (Status.DELIVERED, DELIVERED_EVENT),
        (Status.OPTED_OUT, OPTED_OUT),
        (Status.FAILED, FAILED),
        (Status.RATE_LIMITED, FAILED),
        (Status.NO_CHANNEL, FAILED),
        (Status.INVALID_CREDENTIAL, FAILED),
        (Status.CANCELLED, None),
        (Status.PROCESSING, None),
    ],
)
def test_final_statuses_and_their_events(status: Status, event: str | None) -> None:
    assert event_for_status(status) == event


class _Repo:
    """Counts look-ups; the tenant `t-yes` has an endpoint."""

    def __init__(self) -> None:
        self.lookups = 0

    async def any_active(self, *, tenant_id: str) -> bool:
        self.lookups += 1
        return tenant_id == "t-yes"


async def test_the_has_webhooks_answer_is_cached_per_tenant_for_the_ttl() -> None:
    now = [100.0]
    repo = _Repo()
    events = WebhookEvents(
        webhooks=cast(WebhooksRepo, repo),
        broker=cast(Broker, None),
        ttl_s=5,
        clock=lambda: now[0],
    )
    for _ in range(50):  # a burst of notifications of a tenant without webhooks
        assert not await events.wanted("t-no")
    assert await events.wanted("t-yes")
    assert repo.lookups == 2  # one per tenant
    now[0] += 5.1
    assert not await events.wanted("t-no")
    assert repo.lookups == 3
    events.forget("t-no")
    assert not await events.wanted("t-no")
    assert repo.lookups == 4
    assert not await events.emit(tenant_id="t-no", event_type=FAILED, event_id="e", data={})


def _sg(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "sg_event_id": f"id-{event}-{len(extra)}",
        "sg_message_id": "X.f",
        "email": "a@b.co",
        "timestamp": 1700000000,
        **extra,
    }


def test_sendgrid_event_kinds() -> None:
    receipts = sendgrid_receipts(
        [
            _sg("delivered"),
            _sg("bounce", type="bounce"),
            _sg("bounce", type="blocked", reason="x"),
            _sg("dropped", reason="Bounced Address"),
            _sg("dropped", reason="Unsubscribed Address", x=1),
            _sg("deferred"),
            _sg("spamreport"),
            _sg("open"),
            {"event": "delivered"},  # no event id: not a receipt
            "garbage",
        ]
    )
    assert [r["kind"] for r in receipts] == [
        DELIVERED,
        HARD_BOUNCE,
        SOFT,
        HARD_BOUNCE,
        OTHER,
        SOFT,
        COMPLAINT,
        OTHER,
    ]
    first = receipts[0]
    assert first["receipt_id"] == "SENDGRID:id-delivered-0"
    assert first["provider_message_id"] == "X"
    assert first["occurred_at"].timestamp() == 1700000000
    assert json.loads(first["raw"])["sg_message_id"] == "X.f"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        ("delivered", None, DELIVERED),
        ("undelivered", "30005", HARD_BOUNCE),
        ("failed", "30006", HARD_BOUNCE),
        ("failed", "21211", HARD_BOUNCE),
        ("undelivered", "30003", SOFT),  # handset off: may work later
        ("undelivered", None, SOFT),
        ("sent", None, OTHER),
    ],
)
def test_twilio_status_kinds(status: str, code: str | None, kind: str) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": status, "To": "+1415"}
    if code:
        form["ErrorCode"] = code
    [receipt] = twilio_receipts(form)
    assert (receipt["kind"], receipt["receipt_id"]) == (kind, f"TWILIO:SM1:{status}")
    assert twilio_receipts({"MessageSid": "SM1"}) == []


def test_ses_event_kinds() -> None:
    def envelope(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "MessageId": "sns-1",
            "Message": json.dumps(event),
            "Timestamp": "2026-01-01T00:00:00Z",
        }

    mail = {"messageId": "ses-1", "destination": ["a@b.co", "c@d.co"]}
    bounce: dict[str, Any] = {
        "notificationType": "Bounce",
        "mail": mail,
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "c@d.co"}]},
    }
    [hard] = ses_receipts(envelope(bounce))
    assert (hard["kind"], hard["address"], hard["provider_message_id"]) == (
        HARD_BOUNCE,
        "c@d.co",
        "ses-1",
    )
    transient = {**bounce, "bounce": {**bounce["bounce"], "bounceType": "Transient"}}
    assert ses_receipts(envelope(transient))[0]["kind"] == SOFT
    delivery = ses_receipts(envelope({"notificationType": "Delivery", "mail": mail}))
    assert [(r["kind"], r["address"], r["receipt_id"]) for r in delivery] == [
        (DELIVERED, "a@b.co", "SES:sns-1"),
        (DELIVERED, "c@d.co", "SES:sns-1:1"),
    ]
    complaint = {
        "eventType": "Complaint",
        "mail": mail,
        "complaint": {"complainedRecipients": [{"emailAddress": "a@b.co"}]},
    }
    assert ses_receipts({"MessageId": "x", "Message": complaint})[0]["kind"] == COMPLAINT
    assert ses_receipts({"MessageId": "x", "Message": "not json"}) == []


def test_twilio_signature_is_twilios_algorithm_and_tolerates_a_default_port() -> None:
    params = [("MessageStatus", "delivered"), ("MessageSid", "SM1")]
    url = "https://notify.example.com/webhooks/twilio?tenant=t1"
    data = url + "MessageSidSM1MessageStatusdelivered"
    expected = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("tok", url, params) == expected
    headers = {"X-Twilio-Signature": expected}
    verify_twilio(url=url, params=params, headers=headers, auth_tokens=["other", "tok"])
    with_port = "https://notify.example.com:443/webhooks/twilio?tenant=t1"
    verify_twilio(url=with_port, params=params, headers=headers, auth_tokens=["tok"])
    with pytest.raises(Unauthorized, match="does not verify"):
        verify_twilio(url=url, params=params[:1], headers=headers, auth_tokens=["tok"])


def test_sns_canonical_string_and_certificate_url_allow_list() -> None:
    message = {
        "Type": "Notification",
        "MessageId": "m",
        "Message": "hello",
        "Timestamp": "t",
        "TopicArn": "arn",
        "Subject": "s",
        "Signature": "ignored",
    }
    assert sns_string_to_sign(message) == (
        b"Message\nhello\nMessageId\nm\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
    )
    with pytest.raises(Unauthorized, match="not a string"):
        sns_string_to_sign({**message, "Message": {"moto": "sends objects"}})
    verifier = SnsVerifier(
        http=cast(httpx.AsyncClient, None),
        url_pattern=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
        timeout_s=1,
    )
    assert verifier.allowed("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem")
    assert not verifier.allowed("https://sns.eu-west-1.amazonaws.com.evil.test/cert.pem")
    assert not verifier.allowed("http://sns.eu-west-1.amazonaws.com/cert.pem")
