"""Fixtures for adapter tests: one fake server per module, reset per test, and a fresh client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.apns import FakeApns
from tests.fakes.discord import FakeDiscord
from tests.fakes.fcm import FakeFcm
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.ses import FakeSes
from tests.fakes.slack import FakeSlack
from tests.fakes.twilio import FakeTwilio


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


@pytest.fixture(scope="module")
async def apns_server() -> AsyncIterator[FakeApns]:
    """One FakeApns per module (its key is generated once)."""
    async with FakeApns() as fake:
        yield fake


@pytest.fixture
def apns(apns_server: FakeApns) -> FakeApns:
    """The module's FakeApns, as fresh as a new one."""
    apns_server.reset()
    return apns_server


@pytest.fixture(scope="module")
async def ses_server() -> AsyncIterator[FakeSes]:
    """One FakeSes per module."""
    async with FakeSes() as fake:
        yield fake


@pytest.fixture
def ses(ses_server: FakeSes) -> FakeSes:
    """The module's FakeSes, as fresh as a new one."""
    ses_server.reset()
    return ses_server


@pytest.fixture(scope="module")
async def twilio_server() -> AsyncIterator[FakeTwilio]:
    """One FakeTwilio per module."""
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    """The module's FakeTwilio, as fresh as a new one."""
    twilio_server.reset()
    return twilio_server


@pytest.fixture(scope="module")
async def slack_server() -> AsyncIterator[FakeSlack]:
    """One FakeSlack per module."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack(slack_server: FakeSlack) -> FakeSlack:
    """The module's FakeSlack, as fresh as a new one."""
    slack_server.reset()
    return slack_server


@pytest.fixture(scope="module")
async def discord_server() -> AsyncIterator[FakeDiscord]:
    """One FakeDiscord per module."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def discord(discord_server: FakeDiscord) -> FakeDiscord:
    """The module's FakeDiscord, as fresh as a new one."""
    discord_server.reset()
    return discord_server
