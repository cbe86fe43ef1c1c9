"""Fault tests: real processes killed, a real broker and database server restarted.

Marked `faults` (and `integration`); run them alone with `./scripts/test -m faults`, or
`scripts/faults` for the table. Each test records its counts with `fault_report` (the columns
of `tests/faults/report.py`, plus any extra counts); they are printed at the end of the run,
and written as JSON to `$FAULT_REPORT_JSON` when set. A test's docstring names its fault.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem
from tests.faults.report import COLUMNS, REPORT_ENV

_REPORT = pytest.StashKey[list[str]]()
_ROWS = pytest.StashKey[dict[str, dict[str, Any]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/faults; give each its row, named by its docstring."""
    for item in items:
        if "tests/faults" in str(item.path):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
            doc = getattr(getattr(item, "function", None), "__doc__", None) or item.name
            fault = doc.strip().splitlines()[0].rstrip(".")
            config.stash[_ROWS][item.nodeid] = {"test": item.name, "fault": fault}


def pytest_configure(config: pytest.Config) -> None:
    """Somewhere to collect the counts."""
    config.stash[_REPORT] = []
    config.stash[_ROWS] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note each fault test's outcome (and why it was skipped) in its row."""
    report = yield
    row = item.config.stash[_ROWS].get(item.nodeid)
    if row is not None:
        if report.skipped:
            row["outcome"] = "skipped"
            if isinstance(report.longrepr, tuple):
                row["reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            row["outcome"] = "failed" if report.when == "call" else "error"
        elif report.when == "call":
            row["outcome"] = "passed"
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the rows of the fault tests that ran to `$FAULT_REPORT_JSON`, if set."""
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    rows = [row for row in session.config.stash[_ROWS].values() if "outcome" in row]
    Path(target).write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print every fault test's counts."""
    lines = config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("fault test counts")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`fault_report(requests=…, lost=…, other=…)`: this test's counts, for the run's summary
    and the table (the columns of `report.COLUMNS`; anything else is listed under it)."""

    def record(**counts: Any) -> None:
        text = " ".join(f"{k}={v}" for k, v in counts.items())
        line = f"{request.node.name}: {text}"
        request.config.stash[_REPORT].append(line)
        print(line)
        row = request.config.stash[_ROWS].setdefault(
            request.node.nodeid, {"test": request.node.name, "fault": request.node.name}
        )
        row["columns"] = {k: v for k, v in counts.items() if k in COLUMNS}
        row["extra"] = {k: v for k, v in counts.items() if k not in COLUMNS}

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
