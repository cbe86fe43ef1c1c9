"""Steps shared by the time tests: subscribers, the digest worker, reading records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.db.base import Doc
from shared.settings import Settings
from tests.integration.helpers import ok_rpc
from tests.support import System, Tenant
from workers.process import WorkerProcess


@pytest.fixture(scope="module")
async def digest_worker(system: System, settings: Settings) -> AsyncIterator[WorkerProcess]:
    """`python -m workers digest` in the test's loop, for one module."""
    worker = WorkerProcess(settings, "digest")
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop(timeout_s=10)


async def subscriber(tenant: Tenant, user_id: str, **data: Any) -> None:
    """Create a subscriber with these profile fields."""
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": user_id, "subscriberData": data})


async def records_of(system: System, tenant: Tenant, transaction_id: str) -> list[Doc]:
    """Every stored record of a transaction."""
    assert system.db is not None
    cursor = system.db.notifications.col.find(
        {"tenant_id": tenant.tenant_id, "transaction_id": transaction_id}
    )
    return [d async for d in cursor]


async def inbox_of(system: System, tenant: Tenant, user_id: str) -> list[Doc]:
    """A subscriber's in-app items."""
    assert system.db is not None
    return await system.db.inbox.list_for(tenant_id=tenant.tenant_id, subscriber_id=user_id)


def parse_z(text: str) -> datetime:
    """An API time (`...Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def next_transition(zone: ZoneInfo, *, forward: bool, after: datetime) -> datetime:
    """The local midnight-aligned day after `after` on which `zone`'s clocks go forward
    (spring) or back (autumn): found by scanning, so the tests follow the real rules."""
    day = after.astimezone(zone).replace(hour=12, minute=0, second=0, microsecond=0, tzinfo=None)
    for _ in range(370):
        day += timedelta(days=1)
        before = day.replace(hour=0).replace(tzinfo=zone).utcoffset()
        later = day.replace(hour=23).replace(tzinfo=zone).utcoffset()
        assert before is not None
        assert later is not None
        if (later > before) if forward else (later < before):
            return day.replace(hour=0)
    raise AssertionError(f"{zone} has no DST transition within a year")


def utc(text: str) -> datetime:
    """`2026-03-08T07:30:00` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
