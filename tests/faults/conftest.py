"""Fault tests: real processes killed, a real broker and database server restarted.

Marked `faults` (and `integration`); run them alone with `./scripts/test -m faults`.
Each test records its counts with `fault_report`; they are printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem

_REPORT = pytest.StashKey[list[str]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/faults."""
    for item in items:
        if "tests/faults" in str(item.path):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)


def pytest_configure(config: pytest.Config) -> None:
    """Somewhere to collect the counts."""
    config.stash[_REPORT] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print every fault test's counts."""
    lines = config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("fault test counts")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`fault_report(sent=…, ok=…)`: one line of counts for this test in the run's summary."""

    def record(**counts: Any) -> None:
        text = " ".join(f"{k}={v}" for k, v in counts.items())
        line = f"{request.node.name}: {text}"
        request.config.stash[_REPORT].append(line)
        print(line)

    return record


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    """A fake SendGrid on 127.0.0.1."""
    async with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Where the children's logs go."""
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
async def make_system(
    rabbitmq_url: str, mongodb_url: str, log_dir: Path
) -> AsyncIterator[Callable[..., ProcessSystem]]:
    """Build process systems; every one is stopped and cleaned up after the test."""
    built: list[ProcessSystem] = []

    def make(*, mongodb: str | None = None, **settings_env: str) -> ProcessSystem:
        system = ProcessSystem(
            rabbitmq_url=rabbitmq_url,
            mongodb_url=mongodb or mongodb_url,
            log_dir=log_dir,
            settings_env=settings_env,
        )
        built.append(system)
        return system

    try:
        yield make
    finally:
        for system in built:
            print(system.logs())
            await system.stop()
