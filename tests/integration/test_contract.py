"""The contract the fuzzer cannot break: schemathesis against the live OpenAPI document, every
operation, with a throwaway tenant's admin key and with no key at all.

Operations are read from the live document, so routes added later are fuzzed too. Checks:
no 5xx, every status code and content type declared, every body matching its schema.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest

from tests.support import System

ST = str(Path(sys.executable).with_name("st"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = 12


async def _schemathesis(system: System, *headers: str) -> tuple[int, str]:
    seed = random.randrange(1_000_000)
    argv = [
        ST,
        "run",
        f"{system.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
    ]
    for header in headers:
        argv += ["-H", header]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=500)
    return int(proc.returncode or 0), f"(seed {seed})\n" + output.decode(errors="replace")


@pytest.mark.timeout(600)
async def test_fuzzing_finds_nothing_with_an_admin_key(system: System) -> None:
    tenant = await system.new_tenant()
    try:
        assert system.db is not None
        # The fuzzer sends thousands of requests: a budget of its own keeps it off 429s.
        await system.db.api_keys.ensure(
            key=tenant.api_key,
            tenant_id=tenant.tenant_id,
            scopes=["admin"],
            name="fuzz",
            rate_limit=10_000_000,
        )
        code, output = await _schemathesis(system, f"Authorization: Bearer {tenant.api_key}")
    finally:
        await tenant.client.aclose()
    print(output[-6000:])
    assert code == 0, output[-20000:]


@pytest.mark.timeout(600)
async def test_fuzzing_finds_nothing_without_a_key(system: System) -> None:
    code, output = await _schemathesis(system)
    print(output[-6000:])
    assert code == 0, output[-20000:]
