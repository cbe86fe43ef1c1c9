"""Dead letters put in exactly as the contract says, and raw reads of queues to check on them.

`DeadLetterWriter` does what a channel worker does when it gives up (DESIGN.md §3): the
record becomes FAILED (or RATE_LIMITED) with `dead_lettered_at`, and the original `deliver`
body goes to the DLX, routing key = channel, persistent, confirmed, with the failure headers.
It does not use `shared.dlq`, so tests check that code against the contract, not itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection

from shared.db.base import Doc, utcnow
from shared.db.client import Database
from shared.domain import Channel, Status
from shared.ids import new_id
from shared.messaging.dead_letters import dead_letter_headers
from shared.messaging.messages import deliver_message
from shared.messaging.topology import Topology
from tests.records import record_doc


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as read back from a queue, everything a test may compare."""

    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    priority: int | None
    delivery_mode: int | None
    content_type: str | None

    @property
    def json(self) -> dict[str, Any]:
        """The body, parsed."""
        value: dict[str, Any] = orjson.loads(self.body)
        return value

    def without(self, *names: str) -> RawMessage:
        """The same message minus some headers (e.g. what the broker adds on redelivery)."""
        headers = {k: v for k, v in self.headers.items() if k not in names}
        return RawMessage(
            self.body,
            headers,
            self.message_id,
            self.correlation_id,
            self.priority,
            self.delivery_mode,
            self.content_type,
        )


class DeadLetterWriter:
    """Puts FAILED records and their DLQ messages in, as a worker that gave up would."""

    def __init__(self, *, url: str, topology: Topology, db: Database) -> None:
        self._url = url
        self.topology = topology
        self._db = db
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> Self:
        self._connection = await aio_pika.connect(self._url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def put(
        self,
        *,
        tenant_id: str,
        channel: Channel = Channel.EMAIL,
        reason: str = "provider_error",
        detail: str = "550 mailbox unavailable",
        failed_at: datetime | None = None,
        transaction_id: str | None = None,
        recipient: str = "u1",
        status: Status = Status.FAILED,
        attempts: int = 3,
        priority: int = 2,
        with_record: bool = True,
        content: dict[str, Any] | None = None,
    ) -> Doc:
        """One dead-lettered notification: its record (unless told not to) and its message."""
        failed = failed_at or utcnow()
        failed = failed.replace(microsecond=failed.microsecond // 1000 * 1000)
        record = record_doc(
            tenant_id=tenant_id,
            channel=channel,
            recipient=recipient,
            priority=priority,
            transaction_id=transaction_id or new_id("txn"),
            correlation_id=f"corr-{new_id('c')}",
            source="test.dead_letter",
            content=content or {"title": "Hello", "subject": "Hello", "body": "Dead letter body"},
        )
        tries = [
            {
                "at": failed - timedelta(seconds=attempts - n),
                "provider": "SENDGRID",
                "outcome": "FAILED",
                "reason": reason,
                "detail": detail,
                "duration_ms": 12.5,
                "n": n,
            }
            for n in range(1, attempts + 1)
        ]
        record.update(
            status=status.value,
            attempts=tries,
            attempt_count=attempts,
            failure_reason=reason,
            failure_detail=detail,
            dead_lettered_at=failed,
            completed_at=failed,
            enqueued_at=record["created_at"],
            updated_at=failed,
            provider="SENDGRID",
        )
        if with_record:
            await self._db.notifications.col.insert_one(record)
        body = deliver_message(
            notification_id=record["_id"],
            tenant_id=tenant_id,
            channel=channel.value,
            attempt=attempts,
        )
        headers = dead_letter_headers(
            reason=reason,
            detail=detail,
            attempts=attempts,
            original_queue=self.topology.work_queue(channel, priority),
            failed_at=failed,
            tenant_id=tenant_id,
            transaction_id=record["transaction_id"],
            notification_id=record["_id"],
            final_status=status.value,
            correlation_id=record["correlation_id"],
        )
        assert self._channel is not None
        exchange = await self._channel.get_exchange(self.topology.dlx_exchange, ensure=False)
        confirmation = await exchange.publish(
            aio_pika.Message(
                body=orjson.dumps(body),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                priority=priority,
                message_id=record["_id"],
                correlation_id=record["correlation_id"],
                headers=headers,
            ),
            routing_key=channel.value,
            mandatory=True,
        )
        assert isinstance(confirmation, aiormq.spec.Basic.Ack), confirmation
        return record


async def drain(url: str, queue: str) -> list[RawMessage]:
    """Take every message off `queue`: destructive, for a test's own queues.

    `basic.get` with autoack settles each message synchronously; explicit acks followed by a
    close could be lost on a quorum queue (see `shared/dlq/browse.py`).
    """
    connection = await aio_pika.connect(url)
    out: list[RawMessage] = []
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
            out.append(
                RawMessage(
                    body=message.body,
                    headers=dict(message.headers or {}),
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    priority=message.priority,
                    delivery_mode=int(message.delivery_mode) if message.delivery_mode else None,
                    content_type=message.content_type,
                )
            )
    return out


async def queue_depth(url: str, queue: str) -> int:
    """Ready messages in `queue` (passive declare)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


def at(minutes_ago: float) -> datetime:
    """A failure time some minutes back, in UTC."""
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)
