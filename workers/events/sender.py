"""Delivering one webhook: sign, POST, record the attempt, schedule the next or finish.

At least once: a worker killed mid-call leaves a lapsing `calling` mark; the redelivered job
records that attempt as `interrupted` and calls again (receivers dedupe on `webhook-id`).
Attempt `n` is taken and recorded only while the delivery's count is `n - 1`, so a duplicate
job changes nothing. Retries go through the delay levels at NOTIFY_WEBHOOK_RETRY_DELAYS_S; an
endpoint failing for NOTIFY_WEBHOOK_DISABLE_AFTER_S (or answering 410 Gone) is disabled.

A hanging endpoint holds at most NOTIFY_WEBHOOK_URL_CONCURRENCY calls for its timeout, and its
circuit (per URL) opens after a run of failures: its other deliveries wait in the delay levels
instead of taking the worker's slots. Channel workers never wait for any of this.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import orjson
import structlog

from shared.crypto import CredentialCipher
from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.db.webhooks import DELIVERED, FAILED, PENDING
from shared.messaging.broker import Broker
from shared.settings import Settings
from shared.webhooks.signing import sign_headers
from workers.circuit import CircuitBreaker
from workers.events.fanout import delivery_job

log = structlog.get_logger(__name__)


class WebhookSender:
    """Makes webhook deliveries for one worker process."""

    def __init__(
        self, *, db: Database, broker: Broker, http: httpx.AsyncClient, settings: Settings
    ) -> None:
        self._db = db
        self._broker = broker
        self._http = http
        self._cipher = CredentialCipher(settings.secret_key)
        self._delays = list(settings.webhook_retry_delays_s)
        self._disable_after = timedelta(seconds=settings.webhook_disable_after_s)
        self._timeout_s = settings.webhook_timeout_s
        self._per_url = settings.webhook_url_concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._breaker = CircuitBreaker(
            threshold=settings.webhook_circuit_threshold,
            cooldown_s=settings.webhook_circuit_cooldown_s,
        )

    async def deliver(self, *, tenant_id: str, delivery_id: str, attempt: int) -> None:
        """Make attempt `attempt` of a delivery, if it is still due."""
        deliveries = self._db.webhook_deliveries
        delivery = await deliveries.get(tenant_id=tenant_id, delivery_id=delivery_id)
        if delivery is None or delivery.get("status") != PENDING:
            return
        hook = await self._db.webhooks.get(tenant_id=tenant_id, webhook_id=delivery["webhook_id"])
        if hook is None or not hook.get("active"):
            await deliveries.skip(
                tenant_id=tenant_id,
                delivery_id=delivery_id,
                reason="webhook deleted" if hook is None else "webhook disabled",
            )
            return
        n = int(delivery.get("attempt_count", 0)) + 1
        if attempt < n:
            return  # a stale job: that attempt is made
        calling = delivery.get("calling")
        if isinstance(calling, dict) and calling.get("n") == n:
            until = calling.get("until")
            if until is not None and until > utcnow():
                # Another call holds it (or a dead worker's mark has not lapsed): look later.
                wait = max(1, int((until - utcnow()).total_seconds()) + 1)
                await self._requeue(tenant_id, delivery_id, n, wait)
                return
            # A worker died mid-call: that attempt counts (it may have reached the endpoint),
            # and the next one is made now.
            last = n > len(self._delays)
            await deliveries.record_attempt(
                tenant_id=tenant_id,
                delivery_id=delivery_id,
                attempt={"n": n, "at": calling.get("at") or utcnow(), "outcome": "interrupted"},
                status=FAILED if last else PENDING,
            )
            if last:
                return
            delivery["attempt_count"] = n
            n += 1
        url = str(hook["url"])
        key = ("url", url)
        slots = self._slots.setdefault(url, asyncio.Semaphore(self._per_url))
        if slots.locked() or not self._breaker.acquire(key):
            await self._requeue(tenant_id, delivery_id, n, max(1, int(self._breaker.retry_in(key))))
            return
        async with slots:
            await self._call(hook, delivery, n, url, key)

    async def _call(self, hook: Doc, delivery: Doc, n: int, url: str, key: tuple[str, str]) -> None:
        tenant_id, delivery_id = str(delivery["tenant_id"]), str(delivery["_id"])
        until = utcnow() + timedelta(seconds=self._timeout_s + 5)
        if not await self._db.webhook_deliveries.start_call(
            tenant_id=tenant_id, delivery_id=delivery_id, n=n, until=until
        ):
            self._breaker.release(key)
            return
        body = orjson.dumps(delivery.get("payload") or {})
        headers = {
            "content-type": "application/json",
            "user-agent": "notify-webhooks/1",
            **sign_headers(
                self._secrets(hook),
                msg_id=str(delivery["event_id"]),
                timestamp=int(time.time()),
                body=body,
            ),
        }
        started, at = time.perf_counter(), utcnow()
        attempt: dict[str, Any] = {"n": n, "at": at}
        try:
            response = await self._http.post(
                url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            attempt.update(outcome="failed", error=f"{type(exc).__name__}: {exc}".strip(": "))
            ok = False
        else:
            ok = 200 <= response.status_code < 300
            attempt.update(
                outcome="delivered" if ok else "failed",
                status_code=response.status_code,
                error=None if ok else response.text[:200] or None,
            )
        attempt["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        if ok:
            self._breaker.success(key)
        else:
            self._breaker.failure(key)
        await self._finish_attempt(hook, delivery, n, attempt, ok=ok)

    async def _finish_attempt(
        self, hook: Doc, delivery: Doc, n: int, attempt: dict[str, Any], *, ok: bool
    ) -> None:
        tenant_id, delivery_id = str(delivery["tenant_id"]), str(delivery["_id"])
        webhooks, deliveries = self._db.webhooks, self._db.webhook_deliveries
        webhook_id = str(hook["webhook_id"])
        if ok:
            await deliveries.record_attempt(
                tenant_id=tenant_id, delivery_id=delivery_id, attempt=attempt, status=DELIVERED
            )
            await webhooks.note_success(tenant_id=tenant_id, webhook_id=webhook_id)
            log.info("webhook_delivered", delivery_id=delivery_id, attempt=n)
            return
        since = await webhooks.note_failure(
            tenant_id=tenant_id, webhook_id=webhook_id, at=attempt["at"]
        )
        gone = attempt.get("status_code") == 410
        if gone or attempt["at"] - since >= self._disable_after:
            reason = "endpoint answered 410 Gone" if gone else "failing for too long"
            await deliveries.record_attempt(
                tenant_id=tenant_id, delivery_id=delivery_id, attempt=attempt, status=FAILED
            )
            if await webhooks.disable(tenant_id=tenant_id, webhook_id=webhook_id, reason=reason):
                log.warning("webhook_disabled", webhook_id=webhook_id, reason=reason)
            return
        if n > len(self._delays):
            await deliveries.record_attempt(
                tenant_id=tenant_id, delivery_id=delivery_id, attempt=attempt, status=FAILED
            )
            log.warning("webhook_delivery_failed", delivery_id=delivery_id, attempts=n)
            return
        delay = int(self._delays[n - 1])
        recorded = await deliveries.record_attempt(
            tenant_id=tenant_id,
            delivery_id=delivery_id,
            attempt=attempt,
            status=PENDING,
            next_attempt_at=attempt["at"] + timedelta(seconds=delay),
        )
        if recorded:
            await self._requeue(tenant_id, delivery_id, n + 1, delay)

    async def _requeue(self, tenant_id: str, delivery_id: str, attempt: int, delay_s: int) -> None:
        await self._broker.publish_to_queue(
            queue=self._broker.topology.webhooks_queue,
            body=delivery_job(tenant_id=tenant_id, delivery_id=delivery_id, attempt=attempt),
            delay_s=delay_s,
        )

    def _secrets(self, hook: Doc) -> list[str]:
        """The secret, and a rotated-out one still in its grace period."""
        found = [str(self._cipher.decrypt(str(hook["secret_enc"]))["secret"])]
        previous = hook.get("previous_secret")
        if isinstance(previous, dict) and previous.get("until") and previous["until"] > utcnow():
            found.append(str(self._cipher.decrypt(str(previous["secret_enc"]))["secret"]))
        return found
