"""A permanent refusal lands in the DLQ; once the provider is fixed, a replay delivers it.

The replay runs as an operator would: the admin RPC against the API process, then the
installed `notifyctl` as a process of its own, against the real broker and database.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.db.base import Doc
from shared.db.client import Database
from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.harness import ProcessSystem
from tests.faults.report import tally
from tests.faults.steps import (
    SEND,
    all_records,
    delivered_labels,
    email_body,
    provider_calls,
    setup_email,
)
from tests.support import wait_for

pytestmark = pytest.mark.timeout(180)

NOTIFYCTL = str(Path(sys.executable).with_name("notifyctl"))
MANAGE = "/api/v1/notifications/manage"


async def _notifyctl(system: ProcessSystem, *args: str) -> tuple[int, Any]:
    proc = await asyncio.create_subprocess_exec(
        NOTIFYCTL,
        *args,
        env=system.env(COLUMNS="200"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    try:
        return proc.returncode, orjson.loads(out)
    except orjson.JSONDecodeError:
        return proc.returncode, {"stdout": out.decode(), "stderr": err.decode()}


async def _statuses(db: Database, wanted: dict[str, str]) -> list[Doc] | None:
    docs = {d["_id"]: d for d in await all_records(db)}
    done = all(docs.get(i, {}).get("status") == status for i, status in wanted.items())
    return list(docs.values()) if done else None


async def test_permanent_400_dead_letters_then_replays_after_the_fix(
    make_system: Callable[..., ProcessSystem],
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """Provider refusing permanently (400): dead-lettered, replayed once fixed."""
    system = make_system()
    system.start_worker("email")
    await system.start_api()
    sends = 4
    async with system.open_database() as db:
        async with system.client() as client:
            await setup_email(client, sendgrid)
            sendgrid.script_error(
                400, "The from address does not match a verified Sender Identity.", times=sends
            )
            txns = []
            for i in range(sends):
                response = await client.post(SEND, json=email_body(f"m{i}"))
                assert response.status_code == 200
                txns.append(response.json()["transactionId"])
                # One at a time, so the DLQ's order is the sending order.
                await wait_for(
                    functools.partial(_failed_count, db, i + 1),
                    timeout_s=20,
                    what=f"m{i} to be dead-lettered",
                )
            records = {d["transaction_id"]: d for d in await all_records(db)}
            ids = [records[t]["_id"] for t in txns]

            listed = await client.post(f"{MANAGE}/list-dead-letters", json={"channel": "EMAIL"})
            assert listed.status_code == 200, listed.text
            letters = listed.json()["deadLetters"]
            assert [x["transactionId"] for x in letters] == txns
            assert {x["reason"] for x in letters} == {"bad_request"}

            # The provider is fixed (its scripted refusals are spent); replay one transaction.
            replay = await client.post(
                f"{MANAGE}/replay-dead-letters", json={"transactionIds": [txns[1]]}
            )
            assert replay.status_code == 200, replay.text
            assert replay.json()["notificationIds"] == [ids[1]]
            await wait_for(
                lambda: _statuses(db, {ids[1]: "DELIVERED"}),
                timeout_s=20,
                what="the replayed notification to be delivered",
            )
            left = await client.post(f"{MANAGE}/list-dead-letters", json={"channel": "EMAIL"})
            untouched = [x["transactionId"] for x in left.json()["deadLetters"]]

        # The rest through the CLI, as a process of its own.
        code, dry = await _notifyctl(
            system, "dlq", "replay", "--reason", "bad_request", "--all", "--dry-run", "--json"
        )
        assert code == 0, dry
        code, done = await _notifyctl(
            system, "dlq", "replay", "--reason", "bad_request", "--all", "--yes", "--json"
        )
        assert code == 0, done
        final = await wait_for(
            lambda: _statuses(db, dict.fromkeys(ids, "DELIVERED")),
            timeout_s=30,
            what="every replayed notification to be delivered",
        )
        code, history = await _notifyctl(system, "dlq", "history", "--json")
        assert code == 0, history
        code, remaining = await _notifyctl(system, "dlq", "list", "--json")
        assert code == 0, remaining
        calls = provider_calls(sendgrid)
        counts = tally(
            acknowledged=[f"m{i}" for i in range(sends)],
            unacknowledged=[],
            deliveries=delivered_labels(sendgrid),
        )
        fault_report(
            **counts.columns(),
            dead_lettered=len(letters),
            replayed_by_rpc=1,
            left_untouched_in_order=len(untouched),
            dry_run_would_move=len(dry["notificationIds"]),
            replayed_by_cli=len(done["notificationIds"]),
            records_delivered=sum(1 for d in final if d["status"] == "DELIVERED"),
            provider_calls=sum(calls.values()),
            audited_operations=len(history["operations"]),
            dlq_left=remaining["count"],
        )
        assert untouched == [txns[0], txns[2], txns[3]]
        assert sorted(dry["notificationIds"]) == sorted([ids[0], ids[2], ids[3]])
        assert sorted(done["notificationIds"]) == sorted([ids[0], ids[2], ids[3]])
        assert all(d["replays"] == 1 for d in final)
        assert sorted(calls.values()) == [2] * sends  # refused once, delivered once
        assert remaining["count"] == 0
        actions = [(op["action"], op["dryRun"], op["count"]) for op in history["operations"]]
        assert ("replay", False, 1) in actions
        assert ("replay", False, 3) in actions


async def _failed_count(db: Database, expected: int) -> bool:
    docs = await all_records(db)
    return sum(1 for d in docs if d.get("dead_lettered_at")) >= expected
