"""`scripts/bench --quick --delay --json` at a tiny size: the delay phase's documented fields.

No figure is asserted (this machine is shared and small): only that every delayed send was
claimed, never before it was due, and that the report carries the lateness percentiles.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.integration.test_bench import ROOT, TINY


@pytest.mark.timeout(150)
async def test_bench_delay_phase_reports_lateness(rabbitmq_url: str, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "scripts/bench",
        "--quick",
        "--delay",
        "--delay-sends",
        "10",
        "--json",
        "--log-file",
        str(tmp_path / "bench.log"),
        *TINY,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RABBITMQ_URL": rabbitmq_url},
    )
    async with asyncio.timeout(140):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    delay = json.loads(stdout)["delay"]
    assert (delay["sends"], delay["accepted"], delay["claimed"]) == (10, 10, 10), delay["errors"]
    assert delay["delivered"] == 10
    late = delay["lateness_ms"]
    assert set(late) >= {"p50", "p99", "max", "min"}
    assert late["min"] >= 0  # a claim before its due time would be a bug, not a figure
    assert delay["target_p99_ms"] == 1000.0
