"""Integration tests: every test here talks to the real broker and database server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import FakeSendGrid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration."""
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    """A fake SendGrid on 127.0.0.1 for one test."""
    async with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    """A fake FCM (and OAuth token endpoint) on 127.0.0.1 for one test."""
    async with FakeFcm() as fake:
        yield fake
