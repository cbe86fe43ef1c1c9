"""The delivery policy: which verdict a notification gets. Pure decisions, no I/O.

Inputs are facts the handler gathered (the record, the subscriber, the providers' answers,
circuit states, the clock); outputs are `Verdict`s the settle step writes. Every branch is
unit-tested in `tests/unit/workers/test_delivery_policy.py`.

A decision taken before any provider call is a *pre-send rule*: a function of a `Situation`
returning a verdict or None, listed in `PRE_SEND_RULES` in the order they apply.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared import preferences, quiet_hours
from shared.domain import Category, Channel, Status
from shared.providers.base import DeliveryResult, Outcome
from shared.records import Attempt, DeliveryChange, NotificationRecord
from shared.settings import RetryPolicy
from shared.timefmt import iso_z
from workers.circuit import CircuitState

Jitter = Callable[[float, float], float]


class VerdictKind(StrEnum):
    """What happens to the record after this delivery."""

    FINAL = "final"
    RETRY = "retry"  # a transient failure: try again after a backoff
    WAIT = "wait"  # every provider's circuit is open: no attempt made, look again later
    DEFER = "defer"  # not now (quiet hours): DELAYED until `deliver_at`, no attempt made


@dataclass(slots=True)
class Verdict:
    """The outcome of handling one message, before it is written."""

    kind: VerdictKind
    status: Status
    reason: str | None = None
    detail: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    change: DeliveryChange = field(default_factory=DeliveryChange)
    dead_letter: bool = False
    delay_s: int = 0
    deliver_at: datetime | None = None  # DEFER: when it is due again

    @property
    def attempt_count(self) -> int:
        """The record's attempt count once this verdict is written."""
        return self.change.attempt_count or 0

    def change_to_write(self) -> DeliveryChange:
        """`change` plus the failure fields (None on success, clearing an earlier failure)."""
        return DeliveryChange(
            **self.change.given(), failure_reason=self.reason, failure_detail=self.detail
        )


# When several addresses answered differently, the attempt takes the first of these present.
PRECEDENCE = (
    Outcome.DELIVERED,
    Outcome.PROVIDER_AUTH,
    Outcome.RATE_LIMITED,
    Outcome.RETRY,
    Outcome.PERMANENT,
    Outcome.OPTED_OUT,
    Outcome.INVALID_RECIPIENT,
)
TRANSIENT = frozenset({Outcome.RETRY, Outcome.RATE_LIMITED, Outcome.PROVIDER_AUTH})
# A transient outcome whose retries are spent ends with this status.
SPENT_STATUS = {
    Outcome.RETRY: Status.FAILED,
    Outcome.RATE_LIMITED: Status.RATE_LIMITED,
    Outcome.PROVIDER_AUTH: Status.FAILED,
}


def backoff_s(
    *,
    failures: int,
    policy: RetryPolicy,
    retry_after_s: float | None,
    jitter: Jitter = random.uniform,
) -> int:
    """Whole seconds to wait before the next attempt (the delay levels count in seconds).

    Exponential with full jitter: uniform in [0, min(max, base * 2^(failures-1))]; never
    before a provider's Retry-After; at least 1 s.
    """
    cap = min(policy.max_backoff_s, policy.base_s * 2 ** max(0, failures - 1))
    delay = jitter(0, cap)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return max(1, math.ceil(delay))


def deciding_result(results: Sequence[DeliveryResult]) -> DeliveryResult:
    """The answer an attempt to several addresses is judged by (see PRECEDENCE)."""
    return min(results, key=lambda r: PRECEDENCE.index(r.outcome))


def counts_against_provider(outcome: Outcome) -> bool:
    """True for answers that say the provider (not the message) is failing."""
    return outcome in TRANSIENT


def opens_circuit_at_once(outcome: Outcome) -> bool:
    """Our own credentials refused: no point in sending more until an operator acts."""
    return outcome is Outcome.PROVIDER_AUTH


def fails_over(outcome: Outcome, circuit: CircuitState) -> bool:
    """After a provider's answer: try the next provider now? Only if this one is out."""
    return counts_against_provider(outcome) and circuit is not CircuitState.CLOSED


# --- before any provider call ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Situation:
    """What the pre-send rules see: the claimed record and its recipient, at `now`."""

    record: NotificationRecord
    channel: Channel
    subscriber: dict[str, Any] | None
    addresses: int  # how many addresses the subscriber has on the channel
    now: datetime
    worker: str
    # A workflow escalation step (`skipIfRead`): whether the earlier in-app message was read.
    # Read only for such steps, so other notifications pay nothing for it.
    earlier_read: bool = False


def no_call(
    situation: Situation,
    status: Status,
    reason: str,
    detail: str | None = None,
    *,
    dead_letter: bool = False,
) -> Verdict:
    """A final verdict reached without calling a provider (recorded as one attempt)."""
    record = situation.record
    attempt = Attempt(
        n=len(record.attempts) + 1,
        at=situation.now,
        worker=situation.worker,
        outcome=status.value,
        reason=reason,
        detail=detail,
        duration_ms=0.0,
    )
    return Verdict(
        VerdictKind.FINAL,
        status,
        reason,
        detail,
        attempts=[attempt],
        change=DeliveryChange(attempt_count=record.attempt_count + 1),
        dead_letter=dead_letter,
    )


def subscriber_exists(s: Situation) -> Verdict | None:
    """A recipient who is not a subscriber cannot be reached."""
    if s.subscriber is None:
        return no_call(s, Status.NO_CHANNEL, "subscriber_not_found")
    return None


def has_address(s: Situation) -> Verdict | None:
    """A subscriber with no address on the channel (no device, no e-mail, …)."""
    if s.addresses == 0:
        return no_call(s, Status.NO_CHANNEL, f"no_{s.channel.value}_address")
    return None


# Where the one address of a suppressible channel lives on the subscriber document.
_SUPPRESSIBLE = {Channel.EMAIL: "email", Channel.SMS: "phone"}


def not_suppressed(s: Situation) -> Verdict | None:
    """An address on the tenant's suppression list is not sent to (its mark is on the document).

    Marks name the address they were made for, so a subscriber whose address changed since is
    sent to again even before the marks are recomputed.
    """
    field_name = _SUPPRESSIBLE.get(s.channel)
    if field_name is None or s.subscriber is None:
        return None
    address = s.subscriber.get(field_name)
    for mark in s.subscriber.get("suppressed") or []:
        if (
            isinstance(mark, dict)
            and mark.get("channel") == s.channel.value
            and mark.get("address") == address
        ):
            why = str(mark.get("reason") or "invalid_address")
            status = Status.OPTED_OUT if why == "opted_out" else Status.INVALID_CREDENTIAL
            detail = f"{s.channel.value} address is on the suppression list ({why})"
            return no_call(s, status, "suppressed", detail)
    return None


EXPIRED = "expired"


def not_expired(s: Situation) -> Verdict | None:
    """Past its `expires_at` a record is never sent late: FAILED `expired`, not dead-lettered."""
    expires_at = s.record.expires_at
    if expires_at is not None and s.now >= expires_at:
        return no_call(s, Status.FAILED, EXPIRED, f"not delivered by {iso_z(expires_at)}")
    return None


def unread_escalation(s: Situation) -> Verdict | None:
    """An escalation step whose in-app message was read by the time it is due is not sent."""
    if s.earlier_read:
        return no_call(s, Status.CANCELLED, "read")
    return None


PREFERENCE = "preference"


def preferences_allow(s: Situation) -> Verdict | None:
    """The user turned the channel, or this category on it, off: OPTED_OUT, nothing sent.

    Read at delivery time, so a scheduled or deferred send obeys the preference in force when
    it is due. SYSTEM (the seed's rule) and critical records (a critical workflow) go through.
    """
    if s.record.critical:
        return None
    why = preferences.opted_out_by(s.subscriber, s.channel, s.record.category)
    if why is None:
        return None
    return no_call(s, Status.OPTED_OUT, PREFERENCE, why)


QUIET_HOURS = "quiet_hours"
# Channels that wake someone up; IN_APP waits in the feed and CHAT goes to team spaces.
QUIET_CHANNELS = frozenset({Channel.PUSH, Channel.EMAIL, Channel.SMS})


def outside_quiet_hours(s: Situation) -> Verdict | None:
    """Inside the subscriber's quiet hours: DEFER to the window's end (DELAYED, `quiet_hours`).

    SYSTEM, critical records, IN_APP and CHAT are never deferred.
    """
    record = s.record
    if (
        s.channel not in QUIET_CHANNELS
        or record.critical
        or record.category == Category.SYSTEM.value
    ):
        return None
    until = quiet_hours.window_end(s.now, s.subscriber)
    if until is None:
        return None
    return Verdict(
        VerdictKind.DEFER,
        Status.DELAYED,
        QUIET_HOURS,
        f"in the subscriber's quiet hours until {iso_z(until)}",
        change=DeliveryChange(attempt_count=record.attempt_count),
        delay_s=max(1, math.ceil((until - s.now).total_seconds())),
        deliver_at=until,
    )


PreSendRule = Callable[[Situation], Verdict | None]
PRE_SEND_RULES: tuple[PreSendRule, ...] = (
    unread_escalation,  # read means the user was reached: that outcome wins over expiry
    not_expired,
    subscriber_exists,
    preferences_allow,
    has_address,
    not_suppressed,
    outside_quiet_hours,  # last: only what would be sent now is deferred
)


def before_sending(situation: Situation) -> Verdict | None:
    """The first pre-send rule that decides, or None: go on and send."""
    for rule in PRE_SEND_RULES:
        verdict = rule(situation)
        if verdict is not None:
            return verdict
    return None


# --- after the provider calls ----------------------------------------------------------------


def judge(
    record: NotificationRecord,
    attempts: list[Attempt],
    last: DeliveryResult,
    *,
    policy: RetryPolicy,
    jitter: Jitter = random.uniform,
) -> Verdict:
    """The verdict of the attempts just made; `last` is the final provider's answer."""
    count = record.attempt_count + len(attempts)
    change = DeliveryChange(provider=attempts[-1].provider, attempt_count=count, waiting_since=None)
    if last.provider_message_id:
        change.provider_message_id = last.provider_message_id
    if last.retry_after_s is not None:
        change.retry_after_s = last.retry_after_s
    outcome = last.outcome
    if outcome is Outcome.DELIVERED:
        return _complete(Verdict(VerdictKind.FINAL, Status.DELIVERED), attempts, change)
    reason = "provider_auth" if outcome is Outcome.PROVIDER_AUTH else (last.reason or outcome.value)
    if outcome is Outcome.INVALID_RECIPIENT:
        verdict = Verdict(VerdictKind.FINAL, Status.INVALID_CREDENTIAL, reason, last.detail)
        return _complete(verdict, attempts, change)
    if outcome is Outcome.OPTED_OUT:
        verdict = Verdict(VerdictKind.FINAL, Status.OPTED_OUT, reason, last.detail)
        return _complete(verdict, attempts, change)
    if outcome is Outcome.PERMANENT:
        verdict = Verdict(VerdictKind.FINAL, Status.FAILED, reason, last.detail, dead_letter=True)
        return _complete(verdict, attempts, change)
    if count >= policy.max_attempts:
        spent_reason = "retries_exhausted" if outcome is Outcome.RETRY else reason
        detail = f"{count} attempts; last: {last.reason}: {last.detail or ''}".strip()
        verdict = Verdict(
            VerdictKind.FINAL, SPENT_STATUS[outcome], spent_reason, detail, dead_letter=True
        )
        return _complete(verdict, attempts, change)
    delay = backoff_s(
        failures=count, policy=policy, retry_after_s=last.retry_after_s, jitter=jitter
    )
    verdict = Verdict(VerdictKind.RETRY, Status.RETRYING, reason, last.detail, delay_s=delay)
    return _complete(verdict, attempts, change)


def _complete(verdict: Verdict, attempts: list[Attempt], change: DeliveryChange) -> Verdict:
    verdict.attempts = attempts
    verdict.change = change
    return verdict


def no_provider(situation: Situation) -> Verdict:
    """The tenant has no active provider for the channel."""
    return no_call(situation, Status.NO_CHANNEL, "no_provider")


def unrenderable(situation: Situation, problems: list[str]) -> Verdict:
    """The content cannot be rendered (a template gone or broken): dead-letter it."""
    return no_call(situation, Status.FAILED, "render_error", "; ".join(problems), dead_letter=True)


def wait_for_circuit(
    record: NotificationRecord,
    *,
    now: datetime,
    provider_names: list[str],
    soonest_s: float,
    max_wait_s: float,
    jitter: Jitter = random.uniform,
) -> Verdict:
    """Every provider's circuit is open: wait for the first to half-open, or give up."""
    since = record.waiting_since or now
    names = ", ".join(provider_names)
    if (now - since).total_seconds() >= max_wait_s:
        detail = f"no provider of {names} recovered within {max_wait_s:.0f} s"
        return Verdict(
            VerdictKind.FINAL,
            Status.FAILED,
            "circuit_open",
            detail,
            change=DeliveryChange(attempt_count=record.attempt_count),
            dead_letter=True,
        )
    detail = f"circuit open for {names}"
    return Verdict(
        VerdictKind.WAIT,
        Status.RETRYING,
        "circuit_open",
        detail,
        change=DeliveryChange(
            waiting_since=since,
            attempt_count=record.attempt_count,
            circuit_waits=record.circuit_waits + 1,
        ),
        delay_s=max(1, math.ceil(soonest_s + jitter(0, 1))),
    )


def expire_if_late(record: NotificationRecord, verdict: Verdict, *, now: datetime) -> Verdict:
    """A retry or circuit wait that would end at or past `expires_at` ends the record now:
    FAILED `expired`, not dead-lettered (it is not a failure to replay), never sent late."""
    expires_at = record.expires_at
    if expires_at is None or verdict.kind is VerdictKind.FINAL:
        return verdict
    due = now + timedelta(seconds=verdict.delay_s)
    if due < expires_at:
        return verdict
    detail = (
        f"{verdict.reason}: next try at {iso_z(due)} would be past {iso_z(expires_at)}"
        f"{'; ' + verdict.detail if verdict.detail else ''}"
    )
    attempts = verdict.attempts
    change = DeliveryChange(**verdict.change.given())
    if not attempts:  # a circuit wait made no call: record the decision as one attempt
        attempts = [
            Attempt(
                n=len(record.attempts) + 1,
                at=now,
                outcome=Status.FAILED.value,
                reason=EXPIRED,
                detail=detail,
            )
        ]
        change.attempt_count = record.attempt_count + 1
    return Verdict(
        VerdictKind.FINAL, Status.FAILED, EXPIRED, detail, attempts=attempts, change=change
    )
