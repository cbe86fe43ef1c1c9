"""Every role a worker process can run (`python -m workers <role>`), and what each starts.

Adding a worker is one module with a function `ctx -> list[Service]`, registered here.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.domain import Channel
from workers.context import WorkerContext
from workers.delivery.handler import DeliveryHandler
from workers.digest import digest_services
from workers.events import events_services
from workers.fanout import fanout_services
from workers.maintenance import maintenance_services
from workers.priority import channel_consumers
from workers.service import Service

RoleFactory = Callable[[WorkerContext], list[Service]]


def _channel_role(channel: Channel) -> RoleFactory:
    def services(ctx: WorkerContext) -> list[Service]:
        return [
            channel_consumers(
                broker=ctx.broker,
                channel=channel,
                handler=DeliveryHandler(ctx, channel),
                prefetch=ctx.settings.worker_prefetch,
            )
        ]

    return services


ROLES: dict[str, RoleFactory] = {
    **{channel.value: _channel_role(channel) for channel in Channel},
    "maintenance": maintenance_services,
    "digest": digest_services,
    "events": events_services,
    "fanout": fanout_services,
}
