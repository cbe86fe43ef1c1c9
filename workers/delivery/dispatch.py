"""Calling providers: in preference order, past open circuits, one call per address."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from pymongo.errors import PyMongoError

from shared import metrics
from shared.db.base import utcnow
from shared.db.circuits import CircuitsRepo
from shared.domain import Channel
from shared.providers.base import DeliveryResult, OutboundMessage, Outcome
from shared.records import Attempt, AttemptTarget, NotificationRecord
from workers.circuit import CircuitBreaker, CircuitState
from workers.delivery.addresses import DeadAddresses
from workers.delivery.content import Rendered, Target
from workers.delivery.policy import (
    counts_against_provider,
    deciding_result,
    fails_over,
    opens_circuit_at_once,
)
from workers.providers import ResolvedProvider

log = structlog.get_logger(__name__)

_CIRCUIT_NOTE_S = 1.0  # a database outage must not hold a delivery for the dashboard's sake


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What the provider calls produced: the attempts made and the deciding answer.

    `last` is None when every provider's circuit was open, so nothing was attempted.
    """

    attempts: list[Attempt]
    last: DeliveryResult | None


# Requests that make one record per recipient at once (their records share a transaction):
# adapters that batch (Novu) wait a moment for the siblings. A new fan-out source joins here.
MULTI_RECIPIENT_SOURCES = frozenset({"manage.send-bulk", "manage.send-to-topic", "fanout"})


@dataclass(frozen=True, slots=True)
class _Call:
    """What every provider call of one dispatch shares."""

    content: Rendered
    subscriber: dict[str, Any] | None
    once: dict[str, DeliveryResult]  # per-subscriber routes' answers, by provider name


@dataclass(frozen=True, slots=True)
class Route:
    """Addresses that belong to one provider type, and the configs that can take them."""

    providers: list[ResolvedProvider]
    targets: list[Target]


def route_targets(targets: list[Target], providers: list[ResolvedProvider]) -> list[Route]:
    """Group addresses by the provider type they need (FCM tokens to FCM, APNs tokens to APNS).

    An address of no particular type (an e-mail address) goes to any of the channel's providers;
    a provider of no type (the sandbox) takes any address. An address no configured provider
    can take is left out; no route at all means the tenant has no provider for the channel.
    """
    routes: dict[str | None, Route] = {}
    for target in targets:
        route = routes.get(target.provider_type)
        if route is None:
            serving = [
                p
                for p in providers
                if p.provider_type is None
                or p.per_subscriber
                or target.provider_type is None
                or p.provider_type == target.provider_type
            ]
            if not serving:
                continue
            route = routes[target.provider_type] = Route(providers=serving, targets=[])
        route.targets.append(target)
    return list(routes.values())


class Dispatcher:
    """Tries a channel's providers for one notification, failing over while circuits open."""

    def __init__(
        self,
        *,
        channel: Channel,
        breaker: CircuitBreaker,
        addresses: DeadAddresses,
        worker: str,
        circuits: CircuitsRepo | None = None,
    ) -> None:
        self._channel = channel
        self._breaker = breaker
        self._addresses = addresses
        self._worker = worker
        self._circuits = circuits

    async def run(
        self,
        record: NotificationRecord,
        routes: list[Route],
        content: Rendered,
        subscriber: dict[str, Any] | None = None,
    ) -> Dispatch:
        """Each route through its own providers; the attempts made and the deciding answer.

        `last` is None only when no route got a call through (every circuit open). A
        per-subscriber route (Novu) is called once per notification, whatever the routes:
        its answer stands for every route that reaches it.
        """
        attempts: list[Attempt] = []
        answers: list[DeliveryResult] = []
        once: dict[str, DeliveryResult] = {}
        for route in routes:
            made, last = await self._failover(
                record,
                route.providers,
                _Call(content=content, subscriber=subscriber, once=once),
                route.targets,
                earlier=len(attempts),
            )
            attempts.extend(made)
            if last is not None:
                answers.append(last)
        return Dispatch(attempts=attempts, last=deciding_result(answers) if answers else None)

    async def _failover(
        self,
        record: NotificationRecord,
        providers: list[ResolvedProvider],
        call: _Call,
        targets: list[Target],
        *,
        earlier: int,
    ) -> tuple[list[Attempt], DeliveryResult | None]:
        """Call the first provider whose circuit lets a call through; on to the next if that
        call takes it out (its circuit no longer closed)."""
        attempts: list[Attempt] = []
        last: DeliveryResult | None = None
        for provider in providers:
            key = (record.tenant_id, provider.circuit_key)
            if provider.per_subscriber and provider.name in call.once:
                last = call.once[provider.name]  # called already for another route
                if not fails_over(last.outcome, self._breaker.state(key)):
                    break
                continue
            if not self._breaker.acquire(key):
                continue
            was_closed = self._breaker.state(key) is CircuitState.CLOSED
            try:
                # A per-subscriber route gets the whole subscriber, once: it reaches every
                # address itself.
                sent_to = targets[:1] if provider.per_subscriber else targets
                attempt, last = await self._attempt(record, provider, call, sent_to)
                if provider.per_subscriber:
                    call.once[provider.name] = last
            except BaseException:
                self._breaker.release(key)  # no verdict on the provider: free a probe slot
                raise
            attempt.n = len(record.attempts) + earlier + len(attempts) + 1
            attempts.append(attempt)
            if not counts_against_provider(last.outcome):
                self._breaker.success(key)
                if not was_closed:
                    await self._circuit_changed(record, provider, opened=False)
                break
            if self._breaker.failure(key, open_now=opens_circuit_at_once(last.outcome)):
                await self._circuit_changed(record, provider, opened=True, was_open=not was_closed)
            if not fails_over(last.outcome, self._breaker.state(key)):
                break
        return attempts, last

    async def _circuit_changed(
        self,
        record: NotificationRecord,
        provider: ResolvedProvider,
        *,
        opened: bool,
        was_open: bool = True,
    ) -> None:
        """Count the transition, and note it for the dashboard (best effort, bounded wait)."""
        kind = provider.adapter.name
        if opened:
            metrics.circuit_opened(provider=kind, was_open=was_open)
        else:
            metrics.circuit_closed(provider=kind)
        if self._circuits is None:
            return
        ids = {"tenant_id": record.tenant_id, "provider": provider.name, "worker": self._worker}
        retry_at = utcnow() + timedelta(
            seconds=self._breaker.retry_in((record.tenant_id, provider.circuit_key))
        )
        try:
            async with asyncio.timeout(_CIRCUIT_NOTE_S):
                if opened:
                    await self._circuits.record_open(**ids, provider_type=kind, retry_at=retry_at)
                else:
                    await self._circuits.record_closed(**ids)
        except (TimeoutError, PyMongoError) as exc:
            log.warning("circuit_not_noted", error=repr(exc))

    def soonest_retry_s(self, tenant_id: str, providers: list[ResolvedProvider]) -> float:
        """Seconds until the first of these providers' circuits lets a probe through."""
        return min(self._breaker.retry_in((tenant_id, p.circuit_key)) for p in providers)

    async def _attempt(
        self,
        record: NotificationRecord,
        provider: ResolvedProvider,
        call: _Call,
        targets: list[Target],
    ) -> tuple[Attempt, DeliveryResult]:
        """One provider call per address; the attempt's record and its deciding answer."""
        started = time.perf_counter()
        at = utcnow()
        results = [await self._send_one(provider, record, call, t) for t in targets]
        # Kept apart from duration_ms so the provider's share of an attempt is visible.
        provider_s = time.perf_counter() - started
        provider_ms = round(provider_s * 1000, 2)
        for target, result in zip(targets, results, strict=True):
            await self._addresses.forget(record, target, result, provider=provider.name)
        best = deciding_result(results)
        metrics.observe_provider_call(
            provider=provider.adapter.name, outcome=best.outcome.name, seconds=provider_s
        )
        delivered = best.outcome is Outcome.DELIVERED
        attempt = Attempt(
            at=at,
            worker=self._worker,
            provider=provider.name,
            provider_type=provider.adapter.name,
            outcome=best.outcome.name,
            reason=None if delivered else best.reason,
            detail=None if delivered else best.detail,
            status_code=best.status_code,
            provider_ms=provider_ms,
            retry_after_s=best.retry_after_s,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if len(results) > 1:
            attempt.targets = [
                AttemptTarget(to=t.label, outcome=r.outcome.name, reason=r.reason)
                for t, r in zip(targets, results, strict=True)
            ]
        return attempt, best

    async def _send_one(
        self,
        provider: ResolvedProvider,
        record: NotificationRecord,
        call: _Call,
        target: Target,
    ) -> DeliveryResult:
        content = call.content
        message = OutboundMessage(
            notification_id=record.id,
            tenant_id=record.tenant_id,
            channel=self._channel,
            to=target.address,
            body=content.body,
            subject=content.subject,
            title=content.title,
            data=content.data,
            deep_link=content.deep_link,
            image_url=content.image_url,
            priority=record.priority,
            recipient_id=record.recipient,
            category=record.category,
            feed_id=content.feed_id,
            subscriber=call.subscriber if provider.per_subscriber else None,
            transaction_id=record.transaction_id,
            in_bulk=record.source in MULTI_RECIPIENT_SOURCES,
        )
        return await provider.adapter.send(message)
