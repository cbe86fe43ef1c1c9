"""What every worker process connects to first: the database and the broker."""

from __future__ import annotations

from shared.db.client import Database, connect_database
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.settings import Settings


async def connect_services(settings: Settings) -> tuple[Database, Broker]:
    """The database (indexes ensured) and the broker (topology declared), each retried at start."""
    db = connect_database(
        url=settings.mongodb_url, name=settings.database_name, timeout_ms=settings.mongo_timeout_ms
    )
    await db.wait_ready()
    broker = Broker(
        url=settings.rabbitmq_url,
        topology=Topology(settings.prefix),
        publish_timeout_s=settings.publish_timeout_s,
    )
    await broker.connect()
    return db, broker
