"""`notifyctl dlq` as an operator runs it: the installed entry point in a subprocess, configured
only by the environment variables `Settings` reads, against the running services."""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import orjson

from shared.domain import Channel
from shared.settings import Settings
from tests.integration.dead_letter_support import DeadLetterWriter
from tests.records import stored_doc
from tests.support import System, env, free_port

NOTIFYCTL = str(Path(sys.executable).with_name("notifyctl"))


@dataclass(frozen=True, slots=True)
class Run:
    """A finished `notifyctl` run."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """Stdout, parsed."""
        return orjson.loads(self.stdout)


def _environment(settings: Settings, overrides: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": env("PATH") or "/usr/bin:/bin",
        "HOME": env("HOME") or "/tmp",
        "RABBITMQ_URL": settings.rabbitmq_url,
        "MONGODB_URL": settings.mongodb_url,
        "NOTIFY_PREFIX": settings.prefix,
        "NOTIFY_ENVIRONMENT": "test",
        "NOTIFY_PUBLISH_TIMEOUT_S": "3",
        "COLUMNS": "250",
        **overrides,
    }


async def start_notifyctl(
    settings: Settings, *args: str, **overrides: str
) -> asyncio.subprocess.Process:
    """Start `notifyctl ARGS` with the session's services in its environment."""
    return await asyncio.create_subprocess_exec(
        NOTIFYCTL,
        *args,
        env=_environment(settings, overrides),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, stdin: str = "", seen: str = "") -> Run:
    """Feed `stdin`, wait for the exit; `seen` is stdout already read."""
    stdout, stderr = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=40)
    assert proc.returncode is not None
    return Run(proc.returncode, seen + stdout.decode(), stderr.decode())


async def notifyctl(settings: Settings, *args: str, stdin: str = "", **overrides: str) -> Run:
    """Run `notifyctl ARGS` to the end."""
    return await finish(await start_notifyctl(settings, *args, **overrides), stdin)


async def read_until(proc: asyncio.subprocess.Process, text: str) -> str:
    """Stdout up to and including `text` (a prompt has no newline, so read chunks)."""
    assert proc.stdout is not None
    seen = ""
    while text not in seen:
        chunk = await asyncio.wait_for(proc.stdout.read(4096), timeout=30)
        assert chunk, f"notifyctl ended before printing {text!r}: {seen}"
        seen += chunk.decode()
    return seen


def tenant_id() -> str:
    """A tenant nobody else uses."""
    return f"tenant-{secrets.token_hex(4)}"


async def test_list_show_and_history(
    system: System, settings: Settings, dlq_writer: DeadLetterWriter
) -> None:
    t = tenant_id()
    first = await dlq_writer.put(tenant_id=t, reason="bounced")
    second = await dlq_writer.put(tenant_id=t, channel=Channel.PUSH, reason="provider_error")

    listed = await notifyctl(settings, "dlq", "list", "--tenant", t, "--json")
    assert listed.code == 0, listed.stderr
    assert [d["notificationId"] for d in listed.json["deadLetters"]] == [
        first["_id"],
        second["_id"],
    ]
    assert listed.json["deadLetters"][0]["recordStatus"] == "FAILED"

    table = await notifyctl(settings, "dlq", "list", "--tenant", t, "--channel", "PUSH")
    assert table.code == 0, table.stderr
    assert second["_id"] in table.stdout
    assert first["_id"] not in table.stdout
    assert "1 shown" in table.stdout

    shown = await notifyctl(settings, "dlq", "show", first["transaction_id"], "--json")
    assert shown.code == 0, shown.stderr
    [detail] = shown.json["deadLetters"]
    assert detail["notificationId"] == first["_id"]
    assert detail["record"]["failureReason"] == "bounced"
    assert len(detail["record"]["attempts"]) == 3
    human = await notifyctl(settings, "dlq", "show", first["_id"])
    assert human.code == 0, human.stderr
    assert "x-failure-reason" in human.stdout
    assert "attempts" in human.stdout

    nothing = await notifyctl(settings, "dlq", "show", "ntf_does_not_exist")
    assert nothing.code == 1
    assert "no dead letter for ntf_does_not_exist" in nothing.stderr


async def test_replay_previews_asks_and_replays_exactly_what_it_showed(
    system: System, settings: Settings, dlq_writer: DeadLetterWriter
) -> None:
    t = tenant_id()
    records = [await dlq_writer.put(tenant_id=t) for _ in range(2)]
    ids = [r["_id"] for r in records]

    declined = await notifyctl(settings, "dlq", "replay", "--tenant", t, "--all", stdin="n\n")
    assert declined.code == 1, declined.stderr
    assert "Replay 2 message(s)?" in declined.stdout
    assert "nothing done" in declined.stderr
    still = await notifyctl(settings, "dlq", "list", "--tenant", t, "--json")
    assert [d["notificationId"] for d in still.json["deadLetters"]] == ids

    # A message that arrives while the operator reads the preview is not replayed.
    proc = await start_notifyctl(settings, "dlq", "replay", "--tenant", t, "--all")
    seen = await read_until(proc, "Replay 2 message(s)?")
    late = await dlq_writer.put(tenant_id=t)
    done = await finish(proc, "y\n", seen)
    assert done.code == 0, done.stderr
    assert "2 replayed, 0 skipped" in done.stdout
    assert system.db is not None
    for notification_id in ids:
        record = await stored_doc(system.db, tenant_id=t, notification_id=notification_id)
        assert record is not None
        assert record["replays"] == 1
    after = await notifyctl(settings, "dlq", "list", "--tenant", t, "--json")
    assert [d["notificationId"] for d in after.json["deadLetters"]] == [late["_id"]]

    history = await notifyctl(settings, "dlq", "history", "--tenant", t, "--json")
    assert history.code == 0, history.stderr
    ops = history.json["operations"]
    assert [(o["action"], o["dryRun"], o["count"]) for o in ops] == [
        ("replay", False, 2),
        ("replay", True, 2),  # the preview before the confirmation
        ("replay", True, 2),  # the declined one's preview
    ]
    assert ops[0]["actor"].startswith("cli:")
    assert "@" in ops[0]["actor"]
    assert sorted(ops[0]["filter"]["notificationIds"]) == sorted(ids)


async def test_purge_dry_run_then_yes(
    system: System, settings: Settings, dlq_writer: DeadLetterWriter
) -> None:
    t = tenant_id()
    bounced = await dlq_writer.put(tenant_id=t, reason="bounced")
    kept = await dlq_writer.put(tenant_id=t, reason="provider_error")

    dry = await notifyctl(
        settings,
        "dlq",
        "purge",
        "--tenant",
        t,
        "--reason",
        "bounced",
        "--all",
        "--dry-run",
        "--json",
    )
    assert dry.code == 0, dry.stderr
    assert (dry.json["dryRun"], dry.json["notificationIds"]) == (True, [bounced["_id"]])
    purged = await notifyctl(
        settings, "dlq", "purge", "--tenant", t, "--reason", "bounced", "--all", "--yes"
    )
    assert purged.code == 0, purged.stderr
    assert "1 purged, 0 skipped" in purged.stdout
    left = await notifyctl(settings, "dlq", "list", "--tenant", t, "--json")
    assert [d["notificationId"] for d in left.json["deadLetters"]] == [kept["_id"]]
    assert system.db is not None
    record = await stored_doc(system.db, tenant_id=t, notification_id=bounced["_id"])
    assert record is not None
    assert record["status"] == "FAILED"  # purging leaves the record as it was

    again = await notifyctl(
        settings, "dlq", "purge", "--tenant", t, "--reason", "bounced", "--all", "--yes"
    )
    assert again.code == 1  # nothing matched


async def test_exit_codes_for_usage_outages_and_a_busy_queue(settings: Settings) -> None:
    no_selection = await notifyctl(settings, "dlq", "replay", "--tenant", "x")
    assert no_selection.code == 2
    assert "say what to replay" in no_selection.stderr
    both = await notifyctl(settings, "dlq", "purge", "--all", "--limit", "3")
    assert both.code == 2
    bad_date = await notifyctl(settings, "dlq", "list", "--failed-before", "last week")
    assert bad_date.code == 2
    assert "ISO-8601" in bad_date.stderr

    dead_port = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    broker_down = await notifyctl(settings, "dlq", "list", RABBITMQ_URL=dead_port)
    assert broker_down.code == 3
    assert "unavailable: cannot connect to RabbitMQ" in broker_down.stderr
    db_down = await notifyctl(
        settings,
        "dlq",
        "history",
        MONGODB_URL=f"mongodb://127.0.0.1:{free_port()}",
        NOTIFY_MONGO_TIMEOUT_MS="300",
    )
    assert db_down.code == 3
    assert "unavailable: MongoDB" in db_down.stderr

    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            f"{settings.prefix}.chat.dlq.lock",
            exclusive=True,
            durable=False,
            arguments={"x-max-length": 0},
        )
        busy = await notifyctl(
            settings, "dlq", "list", "--channel", "chat", NOTIFY_PUBLISH_TIMEOUT_S="0.5"
        )
    assert busy.code == 4
    assert "another dead-letter operation is working on" in busy.stderr
