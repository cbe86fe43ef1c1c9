"""Work the service owes a tenant's Novu besides triggers, queued for the `events` worker.

- `queue_subscriber_mirror`: after `update-subscriber-data` / `delete-subscriber`, mirror the
  subscriber (PUT, or DELETE once it is gone) to every Novu route of the tenant;
- `queue_novu_cancel`: after `manage/cancel`, `DELETE /v1/events/trigger/{transactionId}` for
  each record that went through Novu (Novu may still hold delayed or digested steps).

Both only publish a small job (with a confirm) and return: the RPC never waits for Novu, and
the worker retries through the delay levels (`workers/events/novu_sync.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.db.providers import ProvidersRepo
from shared.messaging.broker import Broker
from shared.records import NotificationRecord

NOVU = "NOVU"


async def novu_provider_ids(*, providers: ProvidersRepo, tenant_id: str) -> set[str]:
    """Ids of the tenant's NOVU configs, active or not, in any environment (one read)."""
    docs = await providers.list_configs(
        tenant_id=tenant_id, environment=None, include_inactive=True
    )
    return {
        str(d.get("provider_id") or d["provider_type"]) for d in docs if d["provider_type"] == NOVU
    }


async def queue_subscriber_mirror(
    *, providers: ProvidersRepo, broker: Broker, tenant_id: str, subscriber_id: str
) -> bool:
    """Queue the mirror of one subscriber if the tenant routes through Novu; True if queued."""
    if not await novu_provider_ids(providers=providers, tenant_id=tenant_id):
        return False
    await broker.publish_to_queue(
        queue=broker.topology.events_queue,
        body={
            "v": 1,
            "kind": "novu_subscriber",
            "tenant_id": tenant_id,
            "subscriber_id": subscriber_id,
            "attempt": 1,
        },
    )
    return True


async def queue_novu_cancel(
    *,
    providers: ProvidersRepo,
    broker: Broker,
    tenant_id: str,
    records: Sequence[NotificationRecord],
) -> int:
    """Queue Novu cancels for the records a Novu config handled; how many were queued."""
    ids = await novu_provider_ids(providers=providers, tenant_id=tenant_id)
    cancels = [
        {"provider_id": r.provider, "transaction_id": r.id}
        for r in records
        if r.provider is not None and r.provider in ids
    ]
    if cancels:
        await broker.publish_to_queue(
            queue=broker.topology.events_queue,
            body={
                "v": 1,
                "kind": "novu_cancel",
                "tenant_id": tenant_id,
                "cancels": cancels,
                "attempt": 1,
            },
        )
    return len(cancels)
