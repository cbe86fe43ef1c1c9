"""A topic send's fan-out document: stored, its message published with a confirm, stamped.

The same rule as a single record (DESIGN.md §7 rule 1): the fan-out is written first, so an
acknowledged topic send is never lost; `enqueued_at` is stamped once the broker confirmed its
message, and the fan-out sweep publishes again any fan-out left unstamped. If the broker does
not confirm, the fan-out is deleted (unless a worker already took it) and BrokerUnavailable
raised: the API answers 503, and a retry with the same idempotency key sends afresh.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from pymongo.errors import PyMongoError

from shared.db.base import Doc
from shared.db.client import Database
from shared.errors import BrokerUnavailable
from shared.messaging.broker import Broker
from shared.messaging.messages import fanout_message

log = structlog.get_logger(__name__)


async def publish_fanout(broker: Broker, *, tenant_id: str, fanout_id: str) -> None:
    """Publish the fan-out's message with a confirm, or raise BrokerUnavailable."""
    await broker.publish_fanout(
        body=fanout_message(tenant_id=tenant_id, fanout_id=fanout_id), message_id=fanout_id
    )


async def submit_fanout(
    db: Database, broker: Broker, doc: Doc, *, after_store: Callable[[], None] | None = None
) -> tuple[Doc, bool]:
    """Store and publish a fan-out; the stored one (the first, on an idempotency-key clash)
    and whether it is new. A fan-out stored earlier but never confirmed is published now."""
    stored, created = await db.fanouts.insert(doc)
    if after_store is not None:
        after_store()
    if not created and (stored.get("enqueued_at") is not None or stored["state"] != "PENDING"):
        return stored, False
    tenant_id, fanout_id = stored["tenant_id"], stored["_id"]
    try:
        await publish_fanout(broker, tenant_id=tenant_id, fanout_id=fanout_id)
    except BrokerUnavailable:
        try:
            await db.fanouts.discard_unpublished(tenant_id=tenant_id, fanout_id=fanout_id)
        except PyMongoError as exc:  # the sweep publishes it later instead
            log.warning("fanout_discard_failed", fanout_id=fanout_id, error=repr(exc))
        raise
    try:
        await db.fanouts.mark_enqueued(tenant_id=tenant_id, fanout_id=fanout_id)
    except PyMongoError as exc:
        # Confirmed: the answer stays 200; unstamped, the sweep publishes it once more,
        # which the worker's claim makes harmless.
        log.warning("fanout_not_stamped", fanout_id=fanout_id, error=repr(exc))
    return stored, created
