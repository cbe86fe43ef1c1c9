"""What a delivery does with an address the provider proved dead (or that opted out).

A push token is removed from the subscriber, a chat address unset, an e-mail address or phone
number put on the tenant's suppression list (and marked on its subscribers, where the next
send's pre-send rule finds it). Best effort: the provider was already called and the verdict
stands; a write lost to an outage is made again when the next send meets the dead address.
"""

from __future__ import annotations

import structlog
from pymongo.errors import ConnectionFailure

from shared.db.subscribers import SubscribersRepo
from shared.db.suppressions import REASON_INVALID, REASON_OPTED_OUT, SuppressionsRepo
from shared.domain import Channel
from shared.providers.base import DeliveryResult, Outcome
from shared.records import NotificationRecord
from workers.delivery.content import Target

log = structlog.get_logger(__name__)

FORGETS = frozenset({Outcome.INVALID_RECIPIENT, Outcome.OPTED_OUT})


class DeadAddresses:
    """Removes or suppresses addresses for one channel's worker."""

    def __init__(
        self, *, channel: Channel, subscribers: SubscribersRepo, suppressions: SuppressionsRepo
    ) -> None:
        self._channel = channel
        self._subscribers = subscribers
        self._suppressions = suppressions

    async def forget(
        self, record: NotificationRecord, target: Target, result: DeliveryResult, *, provider: str
    ) -> None:
        """Act on one address's answer if it says the address is dead or opted out."""
        if result.outcome not in FORGETS:
            return
        try:
            await self._forget(record, target, result, provider=provider)
        except ConnectionFailure as exc:
            log.warning("dead_address_not_recorded", error=str(exc), reason=result.reason)

    async def _forget(
        self, record: NotificationRecord, target: Target, result: DeliveryResult, *, provider: str
    ) -> None:
        tenant_id = record.tenant_id
        if self._channel is Channel.PUSH:
            await self._subscribers.remove_token(
                tenant_id=tenant_id, token=target.address, subscriber_id=record.recipient
            )
            log.info("device_token_removed", reason=result.reason, token_suffix=target.address[-6:])
        elif self._channel is Channel.CHAT:
            await self._subscribers.remove_chat_address(
                tenant_id=tenant_id,
                subscriber_id=record.recipient,
                field=target.label,
                address=target.address,
            )
            log.info("chat_address_removed", reason=result.reason, field=target.label)
        elif self._channel in (Channel.EMAIL, Channel.SMS):
            opted_out = result.outcome is Outcome.OPTED_OUT
            await self._suppressions.suppress(
                tenant_id=tenant_id,
                channel=self._channel.value,
                address=target.address,
                reason=REASON_OPTED_OUT if opted_out else REASON_INVALID,
                source=f"{provider}:{result.reason}",
                notification_id=record.id,
                detail=result.detail,
            )
            log.info("address_suppressed", reason=result.reason, channel=self._channel.value)
