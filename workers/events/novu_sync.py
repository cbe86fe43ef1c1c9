"""Mirroring subscribers to Novu and cancelling transactions there, retried on failure.

A job names what to do, not the data: a subscriber job reads the subscriber when it runs (so a
late or repeated job mirrors the current profile, or deletes one that is gone). Transient
answers (5xx, timeouts, 429, our key refused) queue the rest of the job again through the
delay levels, up to NOTIFY_NOVU_SYNC_MAX_ATTEMPTS; a permanent refusal is logged and dropped.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from shared.crypto import CredentialCipher
from shared.db.client import Database
from shared.messaging.broker import Broker
from shared.providers import novu_api
from shared.providers.base import DeliveryResult, Outcome
from shared.providers.stored import StoredConfig, configs_of_type
from shared.settings import Settings

log = structlog.get_logger(__name__)

_DONE = frozenset({Outcome.DELIVERED, Outcome.PERMANENT})


class NovuSync:
    """Runs `novu_subscriber` and `novu_cancel` jobs."""

    def __init__(
        self, *, db: Database, broker: Broker, http: httpx.AsyncClient, settings: Settings
    ) -> None:
        self._db = db
        self._broker = broker
        self._http = http
        self._cipher = CredentialCipher(settings.secret_key)
        self._timeout_s = settings.provider_timeout_s
        self._max_attempts = settings.novu_sync_max_attempts

    async def _configs(self, tenant_id: str, *, include_inactive: bool) -> list[StoredConfig]:
        return await configs_of_type(
            providers=self._db.providers,
            cipher=self._cipher,
            tenant_id=tenant_id,
            provider_type="NOVU",
            include_inactive=include_inactive,
        )

    async def mirror_subscriber(self, body: dict[str, Any]) -> None:
        """PUT the subscriber to each Novu route, or DELETE it there once it is gone here."""
        tenant_id, subscriber_id = str(body["tenant_id"]), str(body["subscriber_id"])
        subscriber = await self._db.subscribers.get(
            tenant_id=tenant_id, subscriber_id=subscriber_id
        )
        failed: list[DeliveryResult] = []
        for config in await self._configs(tenant_id, include_inactive=False):
            common: dict[str, Any] = {
                "endpoint": config.endpoint,
                "api_key": str(config.credentials["apiKey"]),
                "subscriber_id": subscriber_id,
                "timeout_s": self._timeout_s,
            }
            if subscriber is None:
                result = await novu_api.delete_subscriber(self._http, **common)
            else:
                result = await novu_api.put_subscriber(self._http, subscriber=subscriber, **common)
            self._log("novu_subscriber_mirrored", result, provider=config.provider_id)
            if result.outcome not in _DONE:
                failed.append(result)
        if failed:
            await self._again(body, failed[0])

    async def cancel(self, body: dict[str, Any]) -> None:
        """`DELETE /v1/events/trigger/{id}` at the config that handled each transaction."""
        tenant_id = str(body["tenant_id"])
        configs = {c.provider_id: c for c in await self._configs(tenant_id, include_inactive=True)}
        left: list[dict[str, Any]] = []
        last: DeliveryResult | None = None
        for cancel in body.get("cancels") or []:
            config = configs.get(str(cancel.get("provider_id")))
            if config is None:  # the config was deleted: nothing to call
                continue
            result = await novu_api.cancel_trigger(
                self._http,
                endpoint=config.endpoint,
                api_key=str(config.credentials["apiKey"]),
                transaction_id=str(cancel["transaction_id"]),
                timeout_s=self._timeout_s,
            )
            self._log("novu_transaction_cancelled", result, transaction=cancel["transaction_id"])
            if result.outcome not in _DONE:
                left.append(cancel)
                last = result
        if left and last is not None:
            await self._again({**body, "cancels": left}, last)

    async def _again(self, body: dict[str, Any], result: DeliveryResult) -> None:
        attempt = int(body.get("attempt", 1))
        if attempt >= self._max_attempts:
            log.error(
                "novu_sync_gave_up",
                kind=body.get("kind"),
                attempts=attempt,
                reason=result.reason,
                detail=result.detail,
            )
            return
        delay = max(int(result.retry_after_s or 0), min(2**attempt, 600))
        await self._broker.publish_to_queue(
            queue=self._broker.topology.events_queue,
            body={**body, "attempt": attempt + 1},
            delay_s=delay,
        )

    @staticmethod
    def _log(event: str, result: DeliveryResult, **fields: Any) -> None:
        if result.outcome is Outcome.DELIVERED:
            log.info(event, **fields)
        else:
            log.warning(
                f"{event}_failed",
                outcome=result.outcome.value,
                reason=result.reason,
                detail=result.detail,
                **fields,
            )
