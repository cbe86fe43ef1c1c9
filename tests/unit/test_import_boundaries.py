"""The API, the workers' code and `shared` import without the CLI's libraries (typer, rich).

Each check runs in a fresh interpreter, so what this test process has imported does not
count. There, `typer` and `rich` are blocked (`None` in `sys.modules` makes their import
raise ImportError): a module of ours that imports either one fails, while structlog, which
looks for rich only to draw prettier tracebacks, carries on without it. Then `sys.modules`
must hold neither. `workers.__main__` is left out: its own command line is typer today.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

_PROBE = """
import importlib, json, pkgutil, sys

BLOCKED = ("typer", "rich")
for name in BLOCKED:
    sys.modules[name] = None

def package(name, skip=()):
    root = importlib.import_module(name)
    found = [m.name for m in pkgutil.walk_packages(root.__path__, name + ".")]
    return [name] + [m for m in found if m not in skip]

targets = {
    "entry points": ["api.app", "api.__main__"],
    "shared": package("shared"),
    "workers": package("workers", skip=("workers.__main__",)),
    "the CLI": ["notifyctl.app"],
}[sys.argv[1]]
failed = {}
for name in targets:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = repr(exc)
loaded = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in BLOCKED and mod)
print(json.dumps({"imported": targets, "failed": failed, "loaded": loaded}))
"""


def _probe(group: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, group], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


@pytest.mark.parametrize("group", ["entry points", "shared", "workers"])
def test_imports_without_typer_or_rich(group: str) -> None:
    result = _probe(group)
    assert result["failed"] == {}
    assert result["loaded"] == []
    assert len(result["imported"]) > 1


def test_the_probe_catches_a_module_that_needs_them() -> None:
    # The CLI does need them: if the probe let it through, the checks above would prove nothing.
    result = _probe("the CLI")
    assert "notifyctl.app" in result["failed"]
