"""EMAIL through SES (and SendGrid failing over to it), SMS through Twilio, the suppression list."""

from __future__ import annotations

from typing import Any

from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.ses import FakeSes
from tests.fakes.twilio import FakeTwilio
from tests.integration.helpers import configure, ok_rpc, rpc, send_and_wait
from tests.support import Tenant

PHONE = "+14155550100"


async def _subscriber(tenant: Tenant, user: str, **data: Any) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user, "subscriberData": data})


async def _channels(tenant: Tenant, user: str) -> dict[str, int]:
    answer = await ok_rpc(tenant, "get-registered-channels", {}, headers=tenant.user_headers(user))
    return {c["channel"]: c["credentialCount"] for c in answer["channels"]}


async def test_email_through_ses(tenant: Tenant, ses: FakeSes) -> None:
    await configure(tenant, "SES", ses.url, ses.credentials(fromName="Acme"))
    await _subscriber(tenant, "u1", email="ada@example.com")

    status = await send_and_wait(tenant, "u1", "EMAIL", subject="Receipt")

    assert status["result"] == "DELIVERED"
    assert status["providerMessageId"] == ses.message_ids[0]
    [email] = ses.emails
    assert email["Destination"] == {"ToAddresses": ["ada@example.com"]}
    assert email["Content"]["Simple"]["Subject"]["Data"] == "Receipt"


async def test_sendgrid_then_ses_when_sendgrids_key_is_refused(
    tenant: Tenant, sendgrid: FakeSendGrid, ses: FakeSes
) -> None:
    await configure(
        tenant, "SENDGRID", sendgrid.url, {"apiKey": "SG.revoked", "fromEmail": "n@acme.test"}
    )
    await configure(tenant, "SES", ses.url, ses.credentials(), priority=1)
    await _subscriber(tenant, "u1", email="ada@example.com")

    status = await send_and_wait(tenant, "u1", "EMAIL")

    assert status["result"] == "DELIVERED"
    assert [(a["provider"], a["outcome"]) for a in status["attempts"]] == [
        ("SENDGRID", "PROVIDER_AUTH"),
        ("SES", "DELIVERED"),
    ]
    assert sendgrid.mails == []
    assert len(ses.emails) == 1


async def test_sms_through_twilio_after_a_503(tenant: Tenant, twilio: FakeTwilio) -> None:
    await configure(tenant, "TWILIO", twilio.url, twilio.credentials())
    await _subscriber(tenant, "u1", phone=PHONE)
    twilio.script_error(503, 20503, "Service unavailable")

    status = await send_and_wait(tenant, "u1", "SMS")

    assert status["result"] == "DELIVERED"
    assert [a["outcome"] for a in status["attempts"]] == ["RETRY", "DELIVERED"]
    assert status["providerMessageId"] == twilio.sids[0]
    assert twilio.messages[0]["To"] == PHONE


async def test_dead_number_is_suppressed_until_an_operator_removes_it(
    tenant: Tenant, twilio: FakeTwilio
) -> None:
    await configure(tenant, "TWILIO", twilio.url, twilio.credentials())
    await _subscriber(tenant, "u1", phone=PHONE)
    await _subscriber(tenant, "u2", phone=PHONE)  # another subscriber with the same number
    twilio.invalid_numbers.add(PHONE)

    first = await send_and_wait(tenant, "u1", "SMS")
    assert (first["result"], first["failureReason"]) == ("INVALID_CREDENTIAL", "21211")
    listed = await ok_rpc(tenant, "manage/list-suppressions", {"channel": "SMS"})
    assert listed["totalCount"] == 1
    [entry] = listed["suppressions"]
    assert (entry["channel"], entry["address"], entry["reason"], entry["source"]) == (
        "SMS",
        PHONE,
        "invalid_address",
        "TWILIO:21211",
    )
    assert (await _channels(tenant, "u2"))["SMS"] == 0

    # Later sends, to either holder of the number, never reach Twilio.
    calls = len(twilio.requests)
    for user in ("u1", "u2"):
        status = await send_and_wait(tenant, user, "SMS")
        assert (status["result"], status["failureReason"]) == ("INVALID_CREDENTIAL", "suppressed")
    assert len(twilio.requests) == calls

    # The operator fixed the number with the carrier and takes it off the list.
    twilio.invalid_numbers.clear()
    removed = await ok_rpc(
        tenant, "manage/remove-suppression", {"channel": "SMS", "address": PHONE}
    )
    assert removed == {"removed": True, "channel": "SMS", "address": PHONE}
    assert (await send_and_wait(tenant, "u2", "SMS"))["result"] == "DELIVERED"
    again = await rpc(tenant, "manage/remove-suppression", {"channel": "SMS", "address": PHONE})
    assert again.status_code == 404


async def test_marks_follow_address_changes(tenant: Tenant, ses: FakeSes) -> None:
    await configure(tenant, "SES", ses.url, ses.credentials())
    await _subscriber(tenant, "u1", email="old@example.com")
    # SES refuses the address as illegal: suppressed.
    ses.script_error(400, "BadRequestException", "Illegal address")
    status = await send_and_wait(tenant, "u1", "EMAIL")
    assert status["result"] == "INVALID_CREDENTIAL"
    subscriber = (await ok_rpc(tenant, "manage/get-subscriber", {"userId": "u1"}))["subscriber"]
    assert subscriber["suppressed"] == [
        {"channel": "EMAIL", "address": "old@example.com", "reason": "invalid_address"}
    ]
    # A new address is sent to; moving back to the suppressed one marks it again.
    await ok_rpc(
        tenant,
        "manage/update-subscriber-data",
        {"userId": "u1", "subscriberData": {"email": "ada@example.com"}},
    )
    assert (await send_and_wait(tenant, "u1", "EMAIL"))["result"] == "DELIVERED"
    await _subscriber(tenant, "u3", email="old@example.com")  # created with a suppressed address
    status = await send_and_wait(tenant, "u3", "EMAIL")
    assert (status["result"], status["failureReason"]) == ("INVALID_CREDENTIAL", "suppressed")


async def test_stop_reply_ends_opted_out_and_stays_so(tenant: Tenant, twilio: FakeTwilio) -> None:
    await configure(tenant, "TWILIO", twilio.url, twilio.credentials())
    await _subscriber(tenant, "u1", phone=PHONE)
    twilio.opted_out.add(PHONE)

    first = await send_and_wait(tenant, "u1", "SMS")
    second = await send_and_wait(tenant, "u1", "SMS")

    assert (first["result"], first["failureReason"]) == ("OPTED_OUT", "21610")
    assert (second["result"], second["failureReason"]) == ("OPTED_OUT", "suppressed")
    assert len(twilio.requests) == 1
    listed = await ok_rpc(tenant, "manage/list-suppressions", {})
    assert [s["reason"] for s in listed["suppressions"]] == ["opted_out"]


async def test_suppression_rpcs_validate(tenant: Tenant) -> None:
    bad = await rpc(tenant, "manage/remove-suppression", {"channel": "PUSH"})
    assert bad.status_code == 400
    assert bad.json()["error"] == [
        "channel must be one of the following values: EMAIL, SMS",
        "address is required",
    ]
    empty = await ok_rpc(tenant, "manage/list-suppressions", {"page": 1, "pageSize": 10})
    assert empty == {
        "suppressions": [],
        "page": 1,
        "pageSize": 10,
        "totalCount": 0,
        "hasMore": False,
    }
