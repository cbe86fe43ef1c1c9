"""Fixtures for adapter tests: one fake server per module, reset per test, and a fresh client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import FakeSendGrid


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The shared client a worker would own; proxies from the environment are ignored."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
async def sendgrid_server() -> AsyncIterator[FakeSendGrid]:
    """One FakeSendGrid per module: starting uvicorn costs more than a reset."""
    async with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def sendgrid(sendgrid_server: FakeSendGrid) -> FakeSendGrid:
    """The module's FakeSendGrid, as fresh as a new one."""
    sendgrid_server.reset()
    return sendgrid_server


@pytest.fixture(scope="module")
async def fcm_server() -> AsyncIterator[FakeFcm]:
    """One FakeFcm per module."""
    async with FakeFcm() as fake:
        yield fake


@pytest.fixture(scope="module")
def service_account_json(fcm_server: FakeFcm) -> str:
    """A service account the fake accepts; minted once because RSA key generation is slow."""
    return fcm_server.service_account_json()


@pytest.fixture
def fcm(fcm_server: FakeFcm) -> FakeFcm:
    """The module's FakeFcm, as fresh as a new one (accounts survive, issued tokens do not)."""
    fcm_server.reset()
    fcm_server.token_lifetime_s = 3600
    return fcm_server


@pytest.fixture
def closed_url() -> str:
    """A 127.0.0.1 URL nothing listens on, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"
