"""Every branch of the delivery policy, as pure functions: no broker, no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import Channel, Status
from shared.providers.base import DeliveryResult, Outcome
from shared.records import Attempt, DeliveryChange, NotificationRecord
from shared.settings import RetryPolicy
from workers.circuit import CircuitState
from workers.delivery import policy
from workers.delivery.policy import Situation, Verdict, VerdictKind

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)
RETRY = RetryPolicy(max_attempts=3, base_s=2, max_backoff_s=60)


def top(low: float, high: float) -> float:
    """Jitter that always picks the top of the range, so delays are predictable."""
    return high


def record(**fields: Any) -> NotificationRecord:
    base = NotificationRecord.new(
        tenant_id="t1", channel=Channel.EMAIL, recipient="u1", source="test"
    )
    return base.model_copy(update=fields)


def attempt(provider: str = "sg", outcome: str = "RETRY") -> Attempt:
    return Attempt(at=NOW, provider=provider, outcome=outcome)


def situation(
    rec: NotificationRecord | None = None,
    *,
    subscriber: dict[str, Any] | None = None,
    addresses: int = 1,
) -> Situation:
    return Situation(
        record=rec or record(),
        channel=Channel.EMAIL,
        subscriber={"subscriber_id": "u1"} if subscriber is None else subscriber,
        addresses=addresses,
        now=NOW,
        worker="w1",
    )


def judge(result: DeliveryResult, *, before: int = 0, tries: int = 1) -> Verdict:
    return policy.judge(
        record(attempt_count=before),
        [attempt() for _ in range(tries)],
        result,
        policy=RETRY,
        jitter=top,
    )


# --- before sending ----------------------------------------------------------------------------


def test_a_recipient_who_is_no_subscriber_has_no_channel() -> None:
    s = Situation(
        record=record(), channel=Channel.EMAIL, subscriber=None, addresses=0, now=NOW, worker="w"
    )
    verdict = policy.before_sending(s)
    assert verdict is not None
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.FINAL,
        Status.NO_CHANNEL,
        "subscriber_not_found",
    )
    assert not verdict.dead_letter
    [made] = verdict.attempts
    assert (made.n, made.outcome, made.provider, made.worker) == (1, "NO_CHANNEL", None, "w")


def test_a_subscriber_without_an_address_on_the_channel_has_no_channel() -> None:
    verdict = policy.before_sending(situation(addresses=0))
    assert verdict is not None
    assert (verdict.status, verdict.reason) == (Status.NO_CHANNEL, "no_email_address")


def test_a_reachable_subscriber_is_sent_to() -> None:
    assert policy.before_sending(situation()) is None


def _suppressed_situation(channel: Channel, subscriber: dict[str, Any]) -> Situation:
    return Situation(
        record=record(channel=channel),
        channel=channel,
        subscriber={"subscriber_id": "u1", **subscriber},
        addresses=1,
        now=NOW,
        worker="w1",
    )


def test_a_suppressed_email_address_is_invalid_credential_without_a_call() -> None:
    s = _suppressed_situation(
        Channel.EMAIL,
        {
            "email": "gone@x.io",
            "suppressed": [{"channel": "email", "address": "gone@x.io", "reason": "hard_bounce"}],
        },
    )
    verdict = policy.before_sending(s)
    assert verdict is not None
    assert (verdict.status, verdict.reason, verdict.dead_letter) == (
        Status.INVALID_CREDENTIAL,
        "suppressed",
        False,
    )
    assert verdict.detail == "email address is on the suppression list (hard_bounce)"
    assert [a.provider for a in verdict.attempts] == [None]


def test_an_sms_opt_out_mark_ends_opted_out() -> None:
    s = _suppressed_situation(
        Channel.SMS,
        {
            "phone": "+14155550100",
            "suppressed": [{"channel": "sms", "address": "+14155550100", "reason": "opted_out"}],
        },
    )
    verdict = policy.before_sending(s)
    assert verdict is not None
    assert (verdict.status, verdict.reason) == (Status.OPTED_OUT, "suppressed")


@pytest.mark.parametrize(
    ("channel", "subscriber"),
    [
        # The address changed since it was marked: the mark names the old one.
        (
            Channel.EMAIL,
            {
                "email": "new@x.io",
                "suppressed": [{"channel": "email", "address": "old@x.io", "reason": "x"}],
            },
        ),
        # A mark of another channel with the same address.
        (
            Channel.EMAIL,
            {
                "email": "+1",
                "suppressed": [{"channel": "sms", "address": "+1", "reason": "x"}],
            },
        ),
        # Push and chat addresses are removed, never suppressed.
        (
            Channel.PUSH,
            {"suppressed": [{"channel": "push", "address": "tok", "reason": "x"}], "email": "tok"},
        ),
        (Channel.SMS, {"phone": "+1", "suppressed": None}),
    ],
)
def test_marks_that_do_not_name_this_address_let_the_send_go(
    channel: Channel, subscriber: dict[str, Any]
) -> None:
    assert policy.not_suppressed(_suppressed_situation(channel, subscriber)) is None


def test_suppression_is_checked_after_the_address_exists() -> None:
    assert policy.PRE_SEND_RULES.index(policy.not_suppressed) > policy.PRE_SEND_RULES.index(
        policy.has_address
    )


def test_a_decision_without_a_call_counts_as_an_attempt() -> None:
    earlier = record(attempt_count=2, attempts=[attempt(), attempt()])
    verdict = policy.no_provider(situation(earlier))
    assert (verdict.status, verdict.reason, verdict.attempt_count) == (
        Status.NO_CHANNEL,
        "no_provider",
        3,
    )
    assert verdict.attempts[0].n == 3


def test_content_that_will_not_render_is_dead_lettered() -> None:
    verdict = policy.unrenderable(situation(), ["template welcome v2 is gone", "x"])
    assert (verdict.status, verdict.reason, verdict.dead_letter) == (
        Status.FAILED,
        "render_error",
        True,
    )
    assert verdict.detail == "template welcome v2 is gone; x"


# --- after the provider calls --------------------------------------------------------------


def test_delivered_is_final_and_clears_any_earlier_failure() -> None:
    verdict = judge(DeliveryResult(Outcome.DELIVERED, provider_message_id="pm-1"))
    assert (verdict.kind, verdict.status, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.DELIVERED,
        False,
    )
    written = verdict.change_to_write().given()
    assert written["provider_message_id"] == "pm-1"
    assert written["provider"] == "sg"
    assert written["failure_reason"] is None  # written as None: clears a retry's reason
    assert written["waiting_since"] is None


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.RETRY, "server_error"),
        (Outcome.RATE_LIMITED, "rate_limited"),
        (Outcome.PROVIDER_AUTH, "provider_auth"),
    ],
)
def test_each_transient_kind_retries_until_spent(outcome: Outcome, reason: str) -> None:
    result = DeliveryResult(outcome, reason="server_error" if outcome is Outcome.RETRY else None)
    verdict = judge(result, before=0)
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.RETRY,
        Status.RETRYING,
        reason,
    )
    assert verdict.attempt_count == 1
    assert verdict.delay_s == 2  # base 2 s, first failure, jitter at the top
    second = judge(result, before=1)
    assert second.kind is VerdictKind.RETRY
    assert second.delay_s == 4


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        (Outcome.RETRY, Status.FAILED, "retries_exhausted"),
        (Outcome.RATE_LIMITED, Status.RATE_LIMITED, "rate_limited"),
        (Outcome.PROVIDER_AUTH, Status.FAILED, "provider_auth"),
    ],
)
def test_spent_retries_end_final_and_dead_lettered(
    outcome: Outcome, status: Status, reason: str
) -> None:
    verdict = judge(DeliveryResult(outcome, reason="rate_limited"), before=2)
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        status,
        reason,
        True,
    )
    assert verdict.attempt_count == 3
    assert verdict.detail is not None
    assert verdict.detail.startswith("3 attempts; last:")


def test_failover_attempts_all_count_towards_the_limit() -> None:
    verdict = judge(DeliveryResult(Outcome.RETRY), before=1, tries=2)
    assert verdict.kind is VerdictKind.FINAL
    assert verdict.attempt_count == 3


def test_a_permanent_refusal_is_dead_lettered_at_once() -> None:
    verdict = judge(DeliveryResult(Outcome.PERMANENT, reason="bad_request", detail="no from"))
    assert (verdict.status, verdict.reason, verdict.detail, verdict.dead_letter) == (
        Status.FAILED,
        "bad_request",
        "no from",
        True,
    )


def test_a_dead_recipient_address_is_invalid_credential_and_not_dead_lettered() -> None:
    verdict = judge(DeliveryResult(Outcome.INVALID_RECIPIENT, reason="UNREGISTERED"))
    assert (verdict.status, verdict.reason, verdict.dead_letter) == (
        Status.INVALID_CREDENTIAL,
        "UNREGISTERED",
        False,
    )


def test_an_opted_out_recipient_ends_opted_out_and_not_dead_lettered() -> None:
    verdict = judge(DeliveryResult(Outcome.OPTED_OUT, reason="21610"))
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.OPTED_OUT,
        "21610",
        False,
    )


def test_opted_out_ranks_between_permanent_and_a_dead_address() -> None:
    answers = [DeliveryResult(Outcome.INVALID_RECIPIENT), DeliveryResult(Outcome.OPTED_OUT)]
    assert policy.deciding_result(answers).outcome is Outcome.OPTED_OUT
    answers.append(DeliveryResult(Outcome.PERMANENT))
    assert policy.deciding_result(answers).outcome is Outcome.PERMANENT


def test_retry_after_is_honoured_and_recorded() -> None:
    verdict = judge(DeliveryResult(Outcome.RATE_LIMITED, retry_after_s=30))
    assert verdict.delay_s == 30
    assert verdict.change.retry_after_s == 30


def test_several_addresses_are_judged_by_the_most_hopeful_answer() -> None:
    answers = [
        DeliveryResult(Outcome.INVALID_RECIPIENT),
        DeliveryResult(Outcome.RETRY),
        DeliveryResult(Outcome.DELIVERED),
    ]
    assert policy.deciding_result(answers).outcome is Outcome.DELIVERED
    assert policy.deciding_result(answers[:2]).outcome is Outcome.RETRY
    assert policy.deciding_result(answers[:1]).outcome is Outcome.INVALID_RECIPIENT


# --- circuits and failover -------------------------------------------------------------------


def test_failover_happens_only_when_the_answer_took_the_provider_out() -> None:
    assert policy.fails_over(Outcome.RETRY, CircuitState.OPEN)
    assert not policy.fails_over(Outcome.RETRY, CircuitState.CLOSED)  # retry this one later
    assert not policy.fails_over(Outcome.PERMANENT, CircuitState.OPEN)  # the message is bad
    assert not policy.fails_over(Outcome.DELIVERED, CircuitState.OPEN)
    assert policy.opens_circuit_at_once(Outcome.PROVIDER_AUTH)
    assert not policy.opens_circuit_at_once(Outcome.RETRY)
    assert not policy.counts_against_provider(Outcome.INVALID_RECIPIENT)


def test_all_circuits_open_waits_without_spending_an_attempt() -> None:
    waiting = record(attempt_count=1, circuit_waits=2)
    verdict = policy.wait_for_circuit(
        waiting, now=NOW, provider_names=["a", "b"], soonest_s=4.2, max_wait_s=60, jitter=top
    )
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.WAIT,
        Status.RETRYING,
        "circuit_open",
    )
    assert verdict.delay_s == 6  # 4.2 s until a probe, plus up to 1 s of jitter
    assert verdict.attempts == []
    assert verdict.change.attempt_count == 1
    assert verdict.change.circuit_waits == 3
    assert verdict.change.waiting_since == NOW
    assert verdict.detail == "circuit open for a, b"


def test_waiting_past_the_deadline_gives_up_into_the_dlq() -> None:
    since = NOW - timedelta(seconds=61)
    verdict = policy.wait_for_circuit(
        record(waiting_since=since), now=NOW, provider_names=["a"], soonest_s=1, max_wait_s=60
    )
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.FAILED,
        "circuit_open",
        True,
    )
    assert verdict.detail == "no provider of a recovered within 60 s"


def test_waiting_keeps_the_first_wait_time() -> None:
    since = NOW - timedelta(seconds=10)
    verdict = policy.wait_for_circuit(
        record(waiting_since=since), now=NOW, provider_names=["a"], soonest_s=1, max_wait_s=60
    )
    assert verdict.change.waiting_since == since


def test_backoff_uses_the_jitter_it_is_given() -> None:
    assert policy.backoff_s(failures=3, policy=RETRY, retry_after_s=None, jitter=top) == 8
    low = policy.backoff_s(failures=3, policy=RETRY, retry_after_s=None, jitter=lambda a, b: a)
    assert low == 1  # never less than a second


# --- expiry --------------------------------------------------------------------------------------


def test_a_record_past_its_expiry_fails_expired_before_anything_else() -> None:
    expired = record(expires_at=NOW - timedelta(seconds=1))
    # Even with no subscriber: expiry is the first rule, the record is simply too late.
    s = Situation(
        record=expired, channel=Channel.EMAIL, subscriber=None, addresses=0, now=NOW, worker="w"
    )
    verdict = policy.before_sending(s)
    assert verdict is not None
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.FAILED,
        "expired",
        False,
    )
    assert verdict.detail == "not delivered by 2026-03-18T09:59:59.000Z"
    assert verdict.attempts[0].outcome == "FAILED"


def test_expiry_at_this_very_moment_counts_as_expired() -> None:
    assert policy.not_expired(situation(record(expires_at=NOW))) is not None


def test_a_record_before_its_expiry_or_without_one_is_sent() -> None:
    assert policy.not_expired(situation(record(expires_at=NOW + timedelta(seconds=1)))) is None
    assert policy.not_expired(situation(record())) is None
    assert policy.before_sending(situation(record(expires_at=NOW + timedelta(hours=1)))) is None


def _retry(delay_s: int) -> Verdict:
    return Verdict(
        VerdictKind.RETRY,
        Status.RETRYING,
        "server_error",
        "HTTP 503",
        attempts=[attempt()],
        change=DeliveryChange(attempt_count=1, provider="sg"),
        delay_s=delay_s,
    )


def test_a_retry_that_ends_before_expiry_stays_a_retry() -> None:
    rec = record(expires_at=NOW + timedelta(seconds=10))
    verdict = _retry(9)
    assert policy.expire_if_late(rec, verdict, now=NOW) is verdict


def test_a_retry_that_would_end_past_expiry_fails_expired_now_without_dead_letter() -> None:
    rec = record(expires_at=NOW + timedelta(seconds=10))
    verdict = policy.expire_if_late(rec, _retry(10), now=NOW)
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.FAILED,
        "expired",
        False,
    )
    assert verdict.attempts == _retry(10).attempts  # the call just made is still recorded
    assert verdict.change.attempt_count == 1
    assert verdict.change.provider == "sg"
    assert verdict.detail is not None
    assert verdict.detail.startswith("server_error: next try at 2026-03-18T10:00:10.000Z")
    assert verdict.detail.endswith("HTTP 503")


def test_a_circuit_wait_past_expiry_fails_expired_and_records_the_decision() -> None:
    rec = record(attempt_count=2, expires_at=NOW + timedelta(seconds=3))
    wait = policy.wait_for_circuit(
        rec, now=NOW, provider_names=["a"], soonest_s=4.2, max_wait_s=60, jitter=top
    )
    verdict = policy.expire_if_late(rec, wait, now=NOW)
    assert (verdict.kind, verdict.status, verdict.reason, verdict.dead_letter) == (
        VerdictKind.FINAL,
        Status.FAILED,
        "expired",
        False,
    )
    [made] = verdict.attempts
    assert (made.n, made.outcome, made.reason, made.provider) == (1, "FAILED", "expired", None)
    assert verdict.change.attempt_count == 3


def test_final_verdicts_and_records_without_expiry_are_left_alone() -> None:
    rec = record(expires_at=NOW + timedelta(seconds=1))
    final = judge(DeliveryResult(outcome=Outcome.DELIVERED))
    assert policy.expire_if_late(rec, final, now=NOW) is final
    retry = _retry(3600)
    assert policy.expire_if_late(record(), retry, now=NOW) is retry


# --- preferences --------------------------------------------------------------------------------


def _on(
    channel: Channel,
    *,
    prefs: dict[str, Any] | None = None,
    quiet: dict[str, Any] | None = None,
    addresses: int = 1,
    now: datetime = NOW,
    **fields: Any,
) -> Situation:
    subscriber: dict[str, Any] = {"subscriber_id": "u1"}
    if prefs is not None:
        subscriber["preferences"] = prefs
    if quiet is not None:
        subscriber["quiet_hours"] = quiet
    return Situation(
        record=record(channel=channel, **fields),
        channel=channel,
        subscriber=subscriber,
        addresses=addresses,
        now=now,
        worker="w1",
    )


PUSH_OFF = {"push": {"enabled": False}}
PROMO_OFF = {"push": {"categories": {"PROMOTIONAL": False}}}


def test_a_channel_the_user_turned_off_ends_opted_out_without_a_call() -> None:
    verdict = policy.before_sending(_on(Channel.PUSH, prefs=PUSH_OFF))
    assert verdict is not None
    assert (verdict.kind, verdict.status, verdict.reason, verdict.detail) == (
        VerdictKind.FINAL,
        Status.OPTED_OUT,
        "preference",
        "PUSH is turned off by the user",
    )
    assert not verdict.dead_letter
    [made] = verdict.attempts
    assert (made.outcome, made.reason, made.provider) == ("OPTED_OUT", "preference", None)
    assert verdict.attempt_count == 1


def test_a_category_the_user_turned_off_ends_opted_out_on_that_channel_only() -> None:
    verdict = policy.before_sending(_on(Channel.PUSH, prefs=PROMO_OFF, category="PROMOTIONAL"))
    assert verdict is not None
    assert (verdict.status, verdict.reason, verdict.detail) == (
        Status.OPTED_OUT,
        "preference",
        "PROMOTIONAL on PUSH is turned off by the user",
    )
    # Another category on the channel, and the category on another channel, still go.
    assert policy.before_sending(_on(Channel.PUSH, prefs=PROMO_OFF, category="PRODUCT")) is None
    assert (
        policy.before_sending(_on(Channel.EMAIL, prefs=PROMO_OFF, category="PROMOTIONAL")) is None
    )


def test_a_channel_turned_on_explicitly_still_obeys_its_category_switches() -> None:
    prefs = {"push": {"enabled": True, "categories": {"PRODUCT": False}}}
    verdict = policy.before_sending(_on(Channel.PUSH, prefs=prefs, category="PRODUCT"))
    assert verdict is not None
    assert verdict.status is Status.OPTED_OUT
    assert policy.before_sending(_on(Channel.PUSH, prefs=prefs, category="TRANSACTIONAL")) is None


def test_switches_left_alone_or_turned_back_on_let_the_send_go() -> None:
    assert policy.before_sending(_on(Channel.PUSH, prefs={})) is None
    back_on = {"push": {"enabled": True, "categories": {"PROMOTIONAL": True}}}
    assert policy.before_sending(_on(Channel.PUSH, prefs=back_on, category="PROMOTIONAL")) is None


def test_system_goes_through_a_turned_off_channel() -> None:
    assert policy.before_sending(_on(Channel.PUSH, prefs=PUSH_OFF, category="SYSTEM")) is None


def test_a_critical_record_goes_through_a_turned_off_channel_and_category() -> None:
    prefs = {"push": {"enabled": False, "categories": {"PROMOTIONAL": False}}}
    situation = _on(Channel.PUSH, prefs=prefs, category="PROMOTIONAL", critical=True)
    assert policy.before_sending(situation) is None


def test_the_users_choice_is_told_before_a_missing_address() -> None:
    verdict = policy.before_sending(_on(Channel.PUSH, prefs=PUSH_OFF, addresses=0))
    assert verdict is not None
    assert verdict.status is Status.OPTED_OUT


# --- quiet hours --------------------------------------------------------------------------------

# NOW is 10:00 UTC; this window (UTC) holds it and ends at 11:30.
QUIET = {"start": "09:00", "end": "11:30"}
QUIET_END = datetime(2026, 3, 18, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize("channel", [Channel.PUSH, Channel.EMAIL, Channel.SMS])
def test_inside_quiet_hours_a_waking_channel_is_deferred_to_the_windows_end(
    channel: Channel,
) -> None:
    verdict = policy.before_sending(_on(channel, quiet=QUIET, attempt_count=2))
    assert verdict is not None
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.DEFER,
        Status.DELAYED,
        "quiet_hours",
    )
    assert verdict.deliver_at == QUIET_END
    assert verdict.delay_s == 90 * 60
    assert verdict.detail == "in the subscriber's quiet hours until 2026-03-18T11:30:00.000Z"
    assert verdict.attempts == []  # nothing was attempted: the attempt count stays
    assert verdict.change.attempt_count == 2
    assert not verdict.dead_letter


@pytest.mark.parametrize("channel", [Channel.IN_APP, Channel.CHAT])
def test_in_app_and_chat_are_never_deferred(channel: Channel) -> None:
    assert policy.before_sending(_on(channel, quiet=QUIET)) is None


def test_system_and_critical_records_are_never_deferred() -> None:
    assert policy.before_sending(_on(Channel.PUSH, quiet=QUIET, category="SYSTEM")) is None
    assert policy.before_sending(_on(Channel.PUSH, quiet=QUIET, critical=True)) is None


def test_outside_quiet_hours_or_at_their_end_the_send_goes() -> None:
    night = {"start": "22:00", "end": "07:00"}
    assert policy.before_sending(_on(Channel.PUSH, quiet=night)) is None
    assert policy.before_sending(_on(Channel.PUSH, quiet=QUIET, now=QUIET_END)) is None


def test_what_would_not_be_sent_anyway_is_decided_now_not_deferred() -> None:
    opted_out = policy.before_sending(_on(Channel.PUSH, quiet=QUIET, prefs=PUSH_OFF))
    assert opted_out is not None
    assert opted_out.status is Status.OPTED_OUT
    no_address = policy.before_sending(_on(Channel.PUSH, quiet=QUIET, addresses=0))
    assert no_address is not None
    assert no_address.status is Status.NO_CHANNEL


def test_a_deferral_past_the_expiry_fails_expired_now() -> None:
    rec = record(channel=Channel.PUSH, expires_at=NOW + timedelta(minutes=30))
    situation = Situation(
        record=rec,
        channel=Channel.PUSH,
        subscriber={"subscriber_id": "u1", "quiet_hours": QUIET},
        addresses=1,
        now=NOW,
        worker="w1",
    )
    deferred = policy.before_sending(situation)
    assert deferred is not None
    assert deferred.kind is VerdictKind.DEFER
    verdict = policy.expire_if_late(rec, deferred, now=NOW)
    assert (verdict.kind, verdict.status, verdict.reason) == (
        VerdictKind.FINAL,
        Status.FAILED,
        "expired",
    )
    assert not verdict.dead_letter
    in_time = record(channel=Channel.PUSH, expires_at=QUIET_END + timedelta(seconds=1))
    assert policy.expire_if_late(in_time, deferred, now=NOW) is deferred
