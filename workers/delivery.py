"""One message's fate: claim the record, pick a provider, send, then record the verdict.

The verdict is final (DELIVERED, FAILED, …; failures go to the channel's DLQ as well), a retry
after a backoff, or a wait for a provider circuit to close. Everything is written to the record
before the message is acked (DESIGN.md §7).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import structlog
from pymongo.errors import ConnectionFailure
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.domain import Channel, Status
from shared.errors import BrokerUnavailable, ValidationFailed
from shared.messaging.broker import Broker
from shared.messaging.dead_letters import dead_letter_headers
from shared.messaging.messages import deliver_message
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.rendering import TEMPLATE_FIELDS, render_fields
from shared.settings import RetryPolicy
from workers.circuit import CircuitBreaker, CircuitState
from workers.providers import ProviderResolver, ResolvedProvider

log = structlog.get_logger(__name__)


class Disposition(StrEnum):
    """What the consumer does with the message once the handler is done."""

    ACK = "ack"  # outcome recorded (or nothing to do): remove it from the queue
    REQUEUE = "requeue"  # nothing recorded: let the broker deliver it again


class VerdictKind(StrEnum):
    """What happens to the record after this delivery."""

    FINAL = "final"
    RETRY = "retry"  # a transient failure: try again after a backoff
    WAIT = "wait"  # every provider's circuit is open: no attempt made, look again later


@dataclass(slots=True)
class Verdict:
    """The outcome of handling one message, before it is written."""

    kind: VerdictKind
    status: Status
    reason: str | None = None
    detail: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    dead_letter: bool = False
    delay_s: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    address: str
    label: str


# When several addresses answered differently, the attempt takes the first of these present.
_PRECEDENCE = (
    Outcome.DELIVERED,
    Outcome.PROVIDER_AUTH,
    Outcome.RATE_LIMITED,
    Outcome.RETRY,
    Outcome.PERMANENT,
    Outcome.INVALID_RECIPIENT,
)
_TRANSIENT = frozenset({Outcome.RETRY, Outcome.RATE_LIMITED, Outcome.PROVIDER_AUTH})
# A transient outcome whose retries are spent ends with this status.
_SPENT_STATUS = {
    Outcome.RETRY: Status.FAILED,
    Outcome.RATE_LIMITED: Status.RATE_LIMITED,
    Outcome.PROVIDER_AUTH: Status.FAILED,
}
_DB_ERRORS = (ConnectionFailure,)
_T = TypeVar("_T")


def backoff_s(*, failures: int, policy: RetryPolicy, retry_after_s: float | None) -> int:
    """Whole seconds to wait before the next attempt (the delay levels count in seconds).

    Exponential with full jitter: uniform in [0, min(max, base * 2^(failures-1))]; never
    before a provider's Retry-After; at least 1 s.
    """
    cap = min(policy.max_backoff_s, policy.base_s * 2 ** max(0, failures - 1))
    delay = random.uniform(0, cap)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return max(1, math.ceil(delay))


class DeliveryHandler:
    """Handles `deliver` messages for one channel; idempotent on the notification id."""

    def __init__(
        self,
        *,
        db: Database,
        broker: Broker,
        resolver: ProviderResolver,
        breaker: CircuitBreaker,
        channel: Channel,
        worker_id: str,
        lease_s: int,
        policy: RetryPolicy,
        circuit_max_wait_s: float,
    ) -> None:
        self._db = db
        self._broker = broker
        self._resolver = resolver
        self._breaker = breaker
        self._channel = channel
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._policy = policy
        self._circuit_max_wait_s = circuit_max_wait_s

    async def handle(self, body: dict[str, Any]) -> Disposition:
        """Deliver the notification named in `body`; never raises for a provider failure."""
        notification_id = body.get("notification_id")
        tenant_id = body.get("tenant_id")
        if not isinstance(notification_id, str) or not isinstance(tenant_id, str):
            log.error("message_malformed", body=str(body)[:200])
            return Disposition.ACK
        repo = self._db.notifications
        doc = await repo.claim_and_get(
            tenant_id=tenant_id,
            notification_id=notification_id,
            worker=self._worker_id,
            lease_s=self._lease_s,
        )
        if doc is None:
            return await self._not_claimed(tenant_id=tenant_id, notification_id=notification_id)
        claimed_at = time.monotonic()
        try:
            verdict = await self._decide(doc)
        except Exception:
            # Nothing recorded: hand the record back and let the broker redeliver.
            log.exception("delivery_crashed")
            await repo.release(
                tenant_id=tenant_id, notification_id=notification_id, worker=self._worker_id
            )
            return Disposition.REQUEUE
        # Past this point a provider may have been called: the verdict must reach the record,
        # so database and broker hiccups are retried while our lease still holds.
        deadline_s = max(1.0, self._lease_s - (time.monotonic() - claimed_at) - 1.0)
        return await self._settle(doc, verdict, deadline_s=deadline_s)

    # --- deciding ------------------------------------------------------------------------

    async def _decide(self, doc: Doc) -> Verdict:
        tenant_id = doc["tenant_id"]
        subscriber = await self._db.subscribers.get(
            tenant_id=tenant_id, subscriber_id=doc["recipient"]
        )
        if subscriber is None:
            return self._no_call(doc, Status.NO_CHANNEL, "subscriber_not_found")
        targets = _targets(self._channel, subscriber)
        if not targets:
            return self._no_call(doc, Status.NO_CHANNEL, f"no_{self._channel.value}_address")
        providers = await self._resolver.for_channel(tenant_id=tenant_id, channel=self._channel)
        if not providers:
            return self._no_call(doc, Status.NO_CHANNEL, "no_provider")
        try:
            content = await self._content(doc, subscriber)
        except ValidationFailed as exc:
            return self._no_call(
                doc, Status.FAILED, "render_error", "; ".join(exc.details), dead_letter=True
            )

        attempts: list[dict[str, Any]] = []
        last: DeliveryResult | None = None
        for provider in providers:
            key = (tenant_id, provider.name)
            if not self._breaker.acquire(key):
                continue
            try:
                attempt, last = await self._attempt(doc, provider, content, targets)
            except BaseException:
                self._breaker.release(key)  # no verdict on the provider: free a probe slot
                raise
            attempt["n"] = len(doc.get("attempts", [])) + len(attempts) + 1
            attempts.append(attempt)
            if last.outcome in _TRANSIENT:
                self._breaker.failure(key, open_now=last.outcome is Outcome.PROVIDER_AUTH)
                if self._breaker.state(key) is not CircuitState.CLOSED:
                    continue  # this provider is out: fail over to the next one now
            else:
                self._breaker.success(key)
            break
        if last is None:
            return self._wait_for_circuit(doc, providers)
        return self._judge(doc, attempts, last)

    def _no_call(
        self,
        doc: Doc,
        status: Status,
        reason: str,
        detail: str | None = None,
        *,
        dead_letter: bool = False,
    ) -> Verdict:
        attempt = {
            "at": utcnow(),
            "worker": self._worker_id,
            "n": len(doc.get("attempts", [])) + 1,
            "outcome": status.value,
            "reason": reason,
            "detail": detail,
            "duration_ms": 0.0,
        }
        return Verdict(
            VerdictKind.FINAL,
            status,
            reason,
            detail,
            attempts=[attempt],
            fields={"attempt_count": int(doc.get("attempt_count", 0)) + 1},
            dead_letter=dead_letter,
        )

    def _wait_for_circuit(self, doc: Doc, providers: list[ResolvedProvider]) -> Verdict:
        """Every provider's circuit is open: wait for the first to half-open, or give up."""
        now = utcnow()
        since = doc.get("waiting_since") or now
        names = ", ".join(p.name for p in providers)
        if (now - since).total_seconds() >= self._circuit_max_wait_s:
            return Verdict(
                VerdictKind.FINAL,
                Status.FAILED,
                "circuit_open",
                f"no provider of {names} recovered within {self._circuit_max_wait_s:.0f} s",
                fields={"attempt_count": int(doc.get("attempt_count", 0))},
                dead_letter=True,
            )
        soonest = min(self._breaker.retry_in((doc["tenant_id"], p.name)) for p in providers)
        return Verdict(
            VerdictKind.WAIT,
            Status.RETRYING,
            "circuit_open",
            f"circuit open for {names}",
            fields={
                "waiting_since": since,
                "attempt_count": int(doc.get("attempt_count", 0)),
                "circuit_waits": int(doc.get("circuit_waits", 0)) + 1,
            },
            delay_s=max(1, math.ceil(soonest + random.uniform(0, 1))),
        )

    def _judge(self, doc: Doc, attempts: list[dict[str, Any]], last: DeliveryResult) -> Verdict:
        """The verdict of the attempts just made; `last` is the final provider's answer."""
        count = int(doc.get("attempt_count", 0)) + len(attempts)
        fields: dict[str, Any] = {
            "provider": attempts[-1].get("provider"),
            "attempt_count": count,
            "waiting_since": None,
        }
        if last.provider_message_id:
            fields["provider_message_id"] = last.provider_message_id
        if last.retry_after_s is not None:
            fields["retry_after_s"] = last.retry_after_s
        outcome = last.outcome
        if outcome is Outcome.DELIVERED:
            return Verdict(VerdictKind.FINAL, Status.DELIVERED, attempts=attempts, fields=fields)
        reason = (
            "provider_auth" if outcome is Outcome.PROVIDER_AUTH else (last.reason or outcome.value)
        )
        if outcome is Outcome.INVALID_RECIPIENT:
            return Verdict(
                VerdictKind.FINAL,
                Status.INVALID_CREDENTIAL,
                reason,
                last.detail,
                attempts=attempts,
                fields=fields,
            )
        if outcome is Outcome.PERMANENT:
            return Verdict(
                VerdictKind.FINAL,
                Status.FAILED,
                reason,
                last.detail,
                attempts=attempts,
                fields=fields,
                dead_letter=True,
            )
        if count >= self._policy.max_attempts:
            spent_reason = "retries_exhausted" if outcome is Outcome.RETRY else reason
            return Verdict(
                VerdictKind.FINAL,
                _SPENT_STATUS[outcome],
                spent_reason,
                f"{count} attempts; last: {last.reason}: {last.detail or ''}".strip(),
                attempts=attempts,
                fields=fields,
                dead_letter=True,
            )
        delay = backoff_s(failures=count, policy=self._policy, retry_after_s=last.retry_after_s)
        return Verdict(
            VerdictKind.RETRY,
            Status.RETRYING,
            reason,
            last.detail,
            attempts=attempts,
            fields=fields,
            delay_s=delay,
        )

    async def _attempt(
        self,
        doc: Doc,
        provider: ResolvedProvider,
        content: dict[str, Any],
        targets: list[_Target],
    ) -> tuple[dict[str, Any], DeliveryResult]:
        """One provider call per address; the attempt's record and its deciding answer."""
        started = time.perf_counter()
        attempt: dict[str, Any] = {
            "at": utcnow(),
            "worker": self._worker_id,
            "provider": provider.name,
        }
        results = [await self._send_one(provider, doc, content, t) for t in targets]
        # Kept apart from duration_ms so the provider's share of an attempt is visible.
        attempt["provider_ms"] = round((time.perf_counter() - started) * 1000, 2)
        for target, result in zip(targets, results, strict=True):
            if result.outcome is Outcome.INVALID_RECIPIENT and self._channel is Channel.PUSH:
                await self._forget_token(doc, target, result)
        best = min(results, key=lambda r: _PRECEDENCE.index(r.outcome))
        attempt.update(
            outcome=best.outcome.name,
            reason=None if best.outcome is Outcome.DELIVERED else best.reason,
            detail=None if best.outcome is Outcome.DELIVERED else best.detail,
            status_code=best.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if best.retry_after_s is not None:
            attempt["retry_after_s"] = best.retry_after_s
        if len(results) > 1:
            attempt["targets"] = [
                {"to": t.label, "outcome": r.outcome.name, "reason": r.reason}
                for t, r in zip(targets, results, strict=True)
            ]
        return attempt, best

    async def _forget_token(self, doc: Doc, target: _Target, result: DeliveryResult) -> None:
        """Drop a dead device token; best effort, since the provider was already called."""
        try:
            await self._db.subscribers.remove_token(
                tenant_id=doc["tenant_id"], token=target.address, subscriber_id=doc["recipient"]
            )
        except _DB_ERRORS as exc:  # the next send to it finds it dead again
            log.warning("device_token_not_removed", error=str(exc))
            return
        log.info("device_token_removed", reason=result.reason, token_suffix=target.address[-6:])

    # --- recording -------------------------------------------------------------------------

    async def _settle(self, doc: Doc, verdict: Verdict, *, deadline_s: float) -> Disposition:
        tenant_id, notification_id = doc["tenant_id"], doc["_id"]
        repo = self._db.notifications
        fields = {
            **verdict.fields,
            "failure_reason": verdict.reason,
            "failure_detail": verdict.detail,
        }
        try:
            if verdict.kind is VerdictKind.FINAL:
                if verdict.dead_letter:
                    # DLQ first: a crash before the record is written costs one more attempt
                    # and a duplicate dead letter (replay skips it), never a lost one.
                    await self._persist(
                        lambda: self._dead_letter(doc, verdict), deadline_s=deadline_s
                    )
                    fields["dead_lettered_at"] = utcnow()
                done = await self._persist(
                    lambda: repo.finish(
                        tenant_id=tenant_id,
                        notification_id=notification_id,
                        worker=self._worker_id,
                        status=verdict.status,
                        attempts=verdict.attempts,
                        fields=fields,
                    ),
                    deadline_s=deadline_s,
                )
            else:
                next_at = utcnow() + timedelta(seconds=verdict.delay_s)
                done = await self._persist(
                    lambda: repo.retry_later(
                        tenant_id=tenant_id,
                        notification_id=notification_id,
                        worker=self._worker_id,
                        next_attempt_at=next_at,
                        attempts=verdict.attempts,
                        attempt_count=int(verdict.fields.get("attempt_count", 0)),
                        fields=fields,
                    ),
                    deadline_s=deadline_s,
                )
                if done:
                    # Record first: if this publish is lost, the maintenance sweep finds the
                    # overdue RETRYING record and publishes it again.
                    await self._persist(
                        lambda: self._publish_later(doc, verdict), deadline_s=deadline_s
                    )
        except (BrokerUnavailable, *_DB_ERRORS) as exc:
            log.warning("verdict_not_recorded", error=str(exc), verdict=verdict.kind.value)
            return Disposition.REQUEUE
        if not done:
            log.warning("claim_lost_before_finish", status=verdict.status.value)
            return Disposition.ACK
        last = verdict.attempts[-1] if verdict.attempts else {}
        log.info(
            f"notification_{verdict.status.value.lower()}",
            provider=last.get("provider"),
            reason=verdict.reason,
            attempts=verdict.fields.get("attempt_count"),
            retry_in_s=verdict.delay_s or None,
            dead_lettered=verdict.dead_letter or None,
            duration_ms=last.get("duration_ms"),
        )
        return Disposition.ACK

    async def _persist(self, step: Callable[[], Awaitable[_T]], *, deadline_s: float) -> _T:
        """Run `step`, retrying database and broker outages for up to `deadline_s`."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(deadline_s),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type((BrokerUnavailable, *_DB_ERRORS)),
            reraise=True,
        ):
            with attempt:
                return await step()
        raise AssertionError("unreachable: tenacity reraises")

    async def _dead_letter(self, doc: Doc, verdict: Verdict) -> None:
        count = int(verdict.fields.get("attempt_count", 0))
        await self._broker.publish(
            exchange=self._broker.topology.dlx_exchange,
            routing_key=self._channel.value,
            body=deliver_message(
                notification_id=doc["_id"],
                tenant_id=doc["tenant_id"],
                channel=self._channel.value,
                attempt=count,
            ),
            headers=dead_letter_headers(
                reason=verdict.reason or verdict.status.value.lower(),
                detail=verdict.detail,
                attempts=count,
                original_queue=self._broker.topology.queue(self._channel),
                failed_at=datetime.now(UTC),
                tenant_id=doc["tenant_id"],
                transaction_id=doc.get("transaction_id"),
                notification_id=doc["_id"],
                final_status=verdict.status.value,
                correlation_id=doc.get("correlation_id"),
            ),
            priority=int(doc.get("priority", 1)),
            message_id=doc["_id"],
            correlation_id=doc.get("correlation_id"),
        )

    async def _publish_later(self, doc: Doc, verdict: Verdict) -> None:
        await self._broker.publish_notification(
            channel=self._channel,
            body=deliver_message(
                notification_id=doc["_id"],
                tenant_id=doc["tenant_id"],
                channel=self._channel.value,
                attempt=int(verdict.fields.get("attempt_count", 0)) + 1,
            ),
            priority=int(doc.get("priority", 1)),
            correlation_id=doc.get("correlation_id"),
            delay_s=verdict.delay_s,
        )

    async def _not_claimed(self, *, tenant_id: str, notification_id: str) -> Disposition:
        doc = await self._db.notifications.get(tenant_id=tenant_id, notification_id=notification_id)
        if doc is None:
            log.warning("notification_missing")
            return Disposition.ACK
        status = doc["status"]
        not_before: datetime | None = None
        if status == Status.PROCESSING.value:
            not_before = doc.get("lease_until")  # held by a worker that may have died
        elif status == Status.RETRYING.value:
            not_before = doc.get("next_attempt_at")  # this message came early
        if isinstance(not_before, datetime):
            wait_s = max(1, math.ceil((not_before - datetime.now(UTC)).total_seconds()))
            await self._broker.publish_notification(
                channel=self._channel,
                body=deliver_message(
                    notification_id=notification_id,
                    tenant_id=tenant_id,
                    channel=self._channel.value,
                    attempt=int(doc.get("attempt_count", 0)) + 1,
                ),
                priority=int(doc.get("priority", 1)),
                correlation_id=doc.get("correlation_id"),
                delay_s=wait_s,
            )
            log.info("notification_parked", status=status, retry_in_s=wait_s)
            return Disposition.ACK
        log.info("notification_skipped", status=status)
        return Disposition.ACK

    # --- content ---------------------------------------------------------------------------

    async def _send_one(
        self, provider: ResolvedProvider, doc: Doc, content: dict[str, Any], target: _Target
    ) -> DeliveryResult:
        data = {str(k): str(v) for k, v in (content.get("data") or {}).items()}
        message = OutboundMessage(
            notification_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            channel=self._channel,
            to=target.address,
            body=content.get("body") or "",
            subject=content.get("subject"),
            title=content.get("title"),
            data=data,
            deep_link=content.get("deep_link"),
            image_url=content.get("image_url"),
            priority=int(doc.get("priority", 1)),
            recipient_id=doc["recipient"],
            category=doc.get("category"),
        )
        return await provider.adapter.send(message)

    async def _content(self, doc: Doc, subscriber: Doc) -> dict[str, Any]:
        template_ref = doc.get("template")
        if not template_ref:
            content = dict(doc.get("content") or {})
            if self._channel is Channel.EMAIL and not content.get("subject"):
                content["subject"] = content.get("title")
            return content
        template = await self._db.templates.get(
            tenant_id=doc["tenant_id"],
            template_code=template_ref["code"],
            version=template_ref["version"],
        )
        if template is None:
            raise ValidationFailed(
                [f"template {template_ref['code']} v{template_ref['version']} is gone"]
            )
        rendered = render_fields(
            {f: template.get(f) for f in TEMPLATE_FIELDS},
            doc.get("variables") or {},
            template_code=template_ref["code"],
        )
        if self._channel is Channel.EMAIL and not rendered.get("subject"):
            rendered["subject"] = rendered.get("title")
        metadata = doc.get("metadata") or {}
        return {
            **rendered,
            "data": {k: v for k, v in metadata.items() if isinstance(v, str | int | float)},
        }


def _targets(channel: Channel, subscriber: Doc) -> list[_Target]:
    """The subscriber's addresses on a channel."""
    if channel is Channel.EMAIL:
        email = subscriber.get("email")
        return [_Target(email, email)] if email else []
    if channel is Channel.PUSH:
        return [
            _Target(d["token"], f"device:{d.get('device_id')}")
            for d in subscriber.get("devices", [])
        ]
    if channel is Channel.SMS:
        phone = subscriber.get("phone")
        return [_Target(phone, phone)] if phone else []
    if channel is Channel.CHAT:
        return [_Target(w, "webhook") for w in subscriber.get("chat_webhooks", [])]
    return [_Target(subscriber["subscriber_id"], "inbox")]
