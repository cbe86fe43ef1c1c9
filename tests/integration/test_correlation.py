"""The caller's X-Request-ID reaches the worker's log lines through the message headers."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from tests.integration.helpers import ok_rpc, wait_final_status
from tests.support import Tenant, wait_for


@pytest.fixture
def captured() -> Iterator[LogCapture]:
    capture = LogCapture()
    old = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        cache_logger_on_first_use=False,
    )
    try:
        yield capture
    finally:
        structlog.configure(**old)


async def test_worker_logs_carry_the_callers_correlation_id(
    tenant: Tenant, captured: LogCapture
) -> None:
    await ok_rpc(tenant, "manage/create-subscriber", {"userId": "u1", "subscriberData": {}})
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": "u1", "channel": "IN_APP", "content": {"body": "x"}},
        headers={"X-Correlation-ID": "corr-from-caller"},
    )
    await wait_final_status(tenant, sent["transactionId"])

    async def logged() -> list[MutableMapping[str, Any]]:
        return [e for e in captured.entries if e["event"] == "notification_delivered"]

    # The record turns DELIVERED a moment before the worker writes its log line.
    [delivered] = await wait_for(logged, timeout_s=5, what="the worker's log line")
    assert delivered["correlation_id"] == "corr-from-caller"
    assert delivered["tenant_id"] == tenant.tenant_id
    assert delivered["channel"] == "in_app"
    assert delivered["notification_id"].startswith("ntf_")
    assert delivered["attempt"] == 1
