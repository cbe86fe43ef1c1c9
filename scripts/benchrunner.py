"""`scripts/bench`: the broker's ceiling, then the whole system under load, in one run.

1. The ceiling: our messages through the bare broker (pipelined confirms, manual ack).
2. The system as `./scripts/dev` starts it, with a fake SendGrid that answers at once:
   single sends on `POST /api/v1/notifications` and `manage/send` (accepted/s, latency at the
   API, then end to end to DELIVERED from the records), bulk `manage/send-bulk` (recipients
   delivered/s), CPU and time per stage, and the database stage on its own.
3. A table, JSON with `--json`; every rate also as a ratio of this run's ceiling.

This is an entry point: it reads the environment (RABBITMQ_URL, MONGODB_URL) itself.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import orjson
import psutil
import structlog
import typer
import uvloop
from benchkit import dbops
from benchkit import providers as provider_phase
from benchkit.activity import measure_activity, render_activity
from benchkit.ceiling import Ceiling, measure_ceiling
from benchkit.cpu import CpuMeter, cpu_between
from benchkit.dbceiling import measure_database_ceiling
from benchkit.dbstage import measure_database_alone
from benchkit.delay import measure_delay, render_delay
from benchkit.inbox import measure_inbox, render_inbox
from benchkit.load import LoadGenerator, LoadResult
from benchkit.records import STAGES, RecordReader, end_to_end, percentiles, wait_until
from benchkit.report import bottleneck, render, targets, tighter_ceiling_ratios
from benchkit.stack import Stack, StackConfig
from benchkit.topic import (
    measure_fanout_memory,
    measure_topic,
    render_fanout_memory,
    render_topic,
)
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
TENANT = "default"  # the bootstrap key's tenant
TEMPLATE = "bench_email"
REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much of everything one run does."""

    ceiling_messages: int
    subscribers: int
    sends: int
    concurrency: int
    bulk_calls: int
    bulk_size: int
    bulk_concurrency: int
    db_notifications: int
    drain_timeout_s: float
    inbox_sockets: int = 0  # the inbox phase: open sockets (0 skips it) …
    inbox_sends: int = 0  # … and IN_APP sends across them
    delay_sends: int = 0  # the delay phase: 0 skips it (--quick runs it only with --delay)
    activity_records: int = 0  # the activity phase's history; 0 skips the phase
    db_ceiling_documents: int = 2000  # the database ceiling's documents (0 skips it)
    topic_subscribers: int = 0  # the topic phase: one send to this many (0 skips it)


QUICK = Sizes(2000, 100, 150, 32, 3, 100, 3, 60, 20.0, db_ceiling_documents=1000)
DEFAULT = Sizes(
    20000,
    500,
    2000,
    64,
    30,
    100,
    6,
    1000,
    180.0,
    inbox_sockets=1000,
    inbox_sends=1000,
    delay_sends=500,
    activity_records=100_000,
    db_ceiling_documents=20_000,
    topic_subscribers=20_000,
)
QUICK_DELAY_SENDS = 50
QUICK_TOPIC_SUBSCRIBERS = 2000
FANOUT_MEMORY_SIZES = (10_000, 100_000)


@dataclass
class Phase:
    """One measured burst and what it led to."""

    name: str
    path: str
    load: LoadResult
    transaction_ids: list[str]
    expected: int
    cpu_burst: dict[str, dict[str, float]]
    cpu_phase: dict[str, dict[str, float]]
    e2e: dict[str, Any]
    db_ops: dict[str, Any]


class Bench:
    """Drives the load against a started stack and gathers every figure."""

    def __init__(self, stack: Stack, sizes: Sizes, console: Console) -> None:
        """Measure `stack` with `sizes`, telling progress on `console`."""
        self.stack = stack
        self.sizes = sizes
        self.say = console.log
        self.users = [f"00000000-0000-4000-8000-{i:012d}" for i in range(sizes.subscribers)]
        self.processes = {
            "api": int(os.environ.get("NOTIFY_API_PROCESSES", "1")),
            "worker": int(os.environ.get("NOTIFY_WORKER_PROCESSES", "1")),
            "database": 1,
            "provider": 1,
            "load_generator": 1,
            "broker": psutil.cpu_count() or 1,
        }
        self.stats_url = stack.provider_url + "/stats"  # the fake whose counter a phase reads
        self.ceiling_both = 0.0

    async def setup(self, gen: LoadGenerator) -> None:
        """The provider, a template and the subscribers, through the API."""
        stack = self.stack
        status, body = await gen.call(
            "/api/v1/notifications/manage/configure-provider",
            {
                "providerType": "SENDGRID",
                "credentials": {"apiKey": stack.provider_key, "fromEmail": "bench@example.com"},
                "endpoint": stack.provider_url,
            },
        )
        if status != 200:
            raise RuntimeError(f"configure-provider: HTTP {status} {body}")
        status, body = await gen.call(
            "/api/v1/notifications/manage/create-template",
            {
                "templateCode": TEMPLATE,
                "channel": "EMAIL",
                "subject": "Welcome, {{ name }}!",
                "body": "Hi {{ name }}: {{ link }}",
            },
        )
        if status != 200:
            raise RuntimeError(f"create-template: HTTP {status} {body}")
        created = await gen.burst(
            path="/api/v1/notifications/manage/create-subscriber",
            body_for=lambda i: {
                "userId": self.users[i],
                "subscriberData": {"firstName": f"User {i}", "email": f"user{i}@example.com"},
            },
            count=len(self.users),
            concurrency=16,
        )
        if created.accepted != len(self.users):
            raise RuntimeError(f"create-subscriber failed: {dict(created.errors)}")

    async def provider_accepted(self, gen: LoadGenerator) -> int:
        """Mails the fake provider has accepted so far."""
        async with asyncio.timeout(5):
            _, body = await gen.get(self.stats_url)
        return int(body["accepted"])

    async def phase(
        self,
        gen: LoadGenerator,
        reader: RecordReader,
        meter: CpuMeter,
        *,
        name: str,
        path: str,
        body_for: Any,
        count: int,
        concurrency: int,
        per_call: int = 1,
    ) -> Phase:
        """A burst, then wait until every record it made is final, then read the records."""
        self.say(f"{name}: {count} x POST {path} from {concurrency} clients")
        accepted_before = await self.provider_accepted(gen)
        ops_before = await dbops.snapshot(reader.client, reader.own)
        before = meter.snapshot()
        started = time.perf_counter()
        load = await gen.burst(path=path, body_for=body_for, count=count, concurrency=concurrency)
        burst_end = meter.snapshot()
        burst_s = time.perf_counter() - started
        if load.errors:
            self.say(f"{name}: errors {dict(load.errors)}")
        txns = [_transaction_of(a) for a in load.answers]
        expected = sum(_recipients_of(a, per_call) for a in load.answers)

        polls = 0

        async def done() -> bool:
            # The provider's counter is free to read; the database (often the bottleneck) is
            # asked only every 10th poll, for records that end other than DELIVERED.
            nonlocal polls
            polls += 1
            dead = self.stack.dead_child()
            if dead:
                raise RuntimeError(f"{dead} died during {name}")
            if await self.provider_accepted(gen) >= accepted_before + expected:
                return await reader.count_final(txns) >= expected
            return polls % 10 == 0 and await reader.count_final(txns) >= expected

        if not await wait_until(done, timeout_s=self.sizes.drain_timeout_s, every_s=0.2):
            self.say(f"{name}: not every record was final within the drain timeout")
        after = meter.snapshot()
        phase_s = time.perf_counter() - started
        ops_after = await dbops.snapshot(reader.client, reader.own)
        e2e = end_to_end(await reader.fetch(txns))
        self.say(
            f"{name}: {load.accepted}/{count} accepted in {burst_s:.1f} s, "
            f"{e2e['delivered']}/{expected} delivered in {phase_s:.1f} s"
        )
        return Phase(
            name=name,
            path=path,
            load=load,
            transaction_ids=txns,
            expected=expected,
            cpu_burst=cpu_between(before, burst_end, elapsed_s=burst_s, processes=self.processes),
            cpu_phase=cpu_between(before, after, elapsed_s=phase_s, processes=self.processes),
            e2e=e2e,
            db_ops=dbops.per_notification(ops_before, ops_after, delivered=e2e["delivered"]),
        )

    async def run(self, ceiling: Ceiling) -> dict[str, Any]:
        """Every phase against the stack; the report without the run's header."""
        s, stack = self.sizes, self.stack
        reader = RecordReader(url=stack.mongodb_url, database=stack.database_name, tenant_id=TENANT)
        max_conn = max(s.concurrency, s.bulk_concurrency, 16)
        db_ceiling = None
        if s.db_ceiling_documents:
            self.say(f"database ceiling: {s.db_ceiling_documents} documents in batches of 100")
            db_ceiling = await measure_database_ceiling(
                url=stack.mongodb_url,
                database=f"{stack.database_name}_dbceiling",
                documents=s.db_ceiling_documents,
            )
            self.say(f"database ceiling: {db_ceiling['per_s']:,.0f} documents/s")
        try:
            async with LoadGenerator(
                base_url=stack.base_url, api_key=stack.api_key, max_connections=max_conn
            ) as gen:
                self.say(f"setup: provider, template, {len(self.users)} subscribers")
                await self.setup(gen)
                meter = CpuMeter(stack.pids())
                # Warm-up: connections, provider config caches, JIT-free but cache-warm paths.
                await self.phase(
                    gen,
                    reader,
                    meter,
                    name="warm-up",
                    path="/api/v1/notifications/manage/send",
                    body_for=self._send_body,
                    count=min(50, s.sends),
                    concurrency=8,
                )
                phases = [
                    await self.phase(
                        gen,
                        reader,
                        meter,
                        name="api_v1_notifications",
                        path="/api/v1/notifications",
                        body_for=self._seed003_body,
                        count=s.sends,
                        concurrency=s.concurrency,
                    ),
                    await self.phase(
                        gen,
                        reader,
                        meter,
                        name="manage_send",
                        path="/api/v1/notifications/manage/send",
                        body_for=self._send_body,
                        count=s.sends,
                        concurrency=s.concurrency,
                    ),
                ]
                bulk = await self.phase(
                    gen,
                    reader,
                    meter,
                    name="bulk",
                    path="/api/v1/notifications/manage/send-bulk",
                    body_for=self._bulk_body,
                    count=s.bulk_calls,
                    concurrency=s.bulk_concurrency,
                    per_call=s.bulk_size,
                )
                topic: dict[str, Any] = {"subscribers": 0, "skipped": "--topic-subscribers 0"}
                if s.topic_subscribers:
                    topic = await measure_topic(
                        gen,
                        reader,
                        mongodb_url=stack.mongodb_url,
                        database=stack.database_name,
                        tenant_id=TENANT,
                        subscribers=s.topic_subscribers,
                        ceiling_per_s=ceiling.publish_consume_per_s,
                        provider_accepted=lambda: self.provider_accepted(gen),
                        timeout_s=max(s.drain_timeout_s, s.topic_subscribers / 50),
                        say=self.say,
                    )
                delay = (
                    await measure_delay(
                        gen,
                        mongodb_url=stack.mongodb_url,
                        database=stack.database_name,
                        tenant_id=TENANT,
                        users=self.users,
                        sends=s.delay_sends,
                        concurrency=min(s.concurrency, 16),
                        say=self.say,
                    )
                    if s.delay_sends
                    else None
                )
                activity = await self.activity(gen, reader, meter) if s.activity_records else None
            inbox: dict[str, Any] = {"sockets": 0, "skipped": "--inbox-sockets 0"}
            if s.inbox_sockets > 0:
                inbox = await measure_inbox(
                    base_url=stack.base_url,
                    api_key=stack.api_key,
                    api_pids=stack.pids()["api"],
                    sockets=s.inbox_sockets,
                    sends=s.inbox_sends or s.inbox_sockets,
                    concurrency=8,
                    say=self.say,
                )
        finally:
            await reader.close()
        self.say(f"database alone: {s.db_notifications} notifications, c={s.concurrency}")
        db_alone = await measure_database_alone(
            url=stack.mongodb_url,
            database=f"{stack.database_name}_dbstage",
            notifications=s.db_notifications,
            concurrency=s.concurrency,
            bulk_size=s.bulk_size,
        )
        figures = {
            **self._figures(ceiling, phases, bulk, db_alone),
            "inbox": inbox,
            "topic": topic,
        }
        if db_ceiling is not None:
            figures["database_ceiling"] = db_ceiling
            tighter_ceiling_ratios(figures)
        if delay is not None:
            figures["delay"] = delay
        if activity is not None:
            figures["activity"] = activity
        return figures

    async def run_providers(self, ceiling: Ceiling, names: list[str]) -> dict[str, Any]:
        """The end-to-end phase through each named provider's fake (`--provider`)."""
        stack = self.stack
        self.ceiling_both = ceiling.publish_consume_per_s
        reader = RecordReader(url=stack.mongodb_url, database=stack.database_name, tenant_id=TENANT)
        try:
            async with LoadGenerator(
                base_url=stack.base_url, api_key=stack.api_key, max_connections=64
            ) as gen:
                meter = CpuMeter(stack.pids())
                figures = await provider_phase.run_providers(self, gen, reader, meter, names)
        finally:
            await reader.close()
        return {"ceiling": ceiling.as_dict(), "providers": figures}

    async def activity(self, gen: LoadGenerator, reader: RecordReader, meter: CpuMeter) -> Any:
        """The activity phase (benchkit/activity.py): queries over a large history, idle and
        while a `manage/send` burst is delivered."""

        async def burst() -> LoadResult:
            sends = await self.phase(
                gen,
                reader,
                meter,
                name="activity_load",
                path="/api/v1/notifications/manage/send",
                body_for=self._send_body,
                count=self.sizes.sends,
                concurrency=self.sizes.concurrency,
            )
            return sends.load

        return await measure_activity(
            gen=gen,
            url=self.stack.mongodb_url,
            database=self.stack.database_name,
            tenant_id=TENANT,
            users=self.users,
            records=self.sizes.activity_records,
            burst=burst,
            clients=4,
            say=self.say,
        )

    def _figures(
        self, ceiling: Ceiling, phases: list[Phase], bulk: Phase, db_alone: dict[str, Any]
    ) -> dict[str, Any]:
        pub, both = ceiling.publish_per_s, ceiling.publish_consume_per_s
        single: dict[str, Any] = {}
        e2e: dict[str, Any] = {}
        stages: dict[str, Any] = {}
        for p in phases:
            rate = p.load.accepted / p.load.elapsed_s
            single[p.name] = {
                "path": p.path,
                "requests": p.load.requests,
                "accepted": p.load.accepted,
                "errors": dict(p.load.errors),
                "concurrency": self.sizes.concurrency,
                "elapsed_s": round(p.load.elapsed_s, 3),
                "accepted_per_s": round(rate, 1),
                "ratio_of_ceiling": round(rate / pub, 4),
                "ratio_basis": "ceiling.publish_per_s",
                "latency_ms": percentiles(p.load.latencies_ms),
                "client_cpu_share_of_core": round(p.load.client_cpu_s / p.load.elapsed_s, 3),
                "cpu": p.cpu_burst,
                "bottleneck": bottleneck(p.cpu_burst),
            }
            e2e[p.name] = {
                **p.e2e,
                "ratio_of_ceiling": round(p.e2e.get("per_s", 0.0) / both, 4),
                "ratio_basis": "ceiling.publish_consume_per_s",
            }
            stages[p.name] = self._stage(p)
        b_rate = bulk.e2e.get("per_s", 0.0)
        bulk_figures = {
            "path": bulk.path,
            "calls": bulk.load.requests,
            "accepted_calls": bulk.load.accepted,
            "errors": dict(bulk.load.errors),
            # Distinct users per call: a call never names more users than exist.
            "recipients_per_call": min(self.sizes.bulk_size, len(self.users)),
            "recipients": bulk.expected,
            "concurrency": self.sizes.bulk_concurrency,
            "call_latency_ms": percentiles(bulk.load.latencies_ms),
            "recipients_accepted_per_s": round(bulk.expected / bulk.load.elapsed_s, 1),
            "recipients_delivered_per_s": b_rate,
            "ratio_of_ceiling": round(b_rate / both, 4),
            "ratio_basis": "ceiling.publish_consume_per_s",
            "end_to_end": bulk.e2e,
        }
        stages["bulk"] = self._stage(bulk)
        for key in ("send", "bulk"):
            db_alone[key]["ratio_of_ceiling"] = round(db_alone[key]["per_s"] / both, 4)
        return {
            "ceiling": ceiling.as_dict(),
            "single_sends": single,
            "end_to_end": e2e,
            "bulk": bulk_figures,
            "stages": stages,
            "stage_definitions": STAGES,
            "database_alone": db_alone,
            "pipeline_without_database": {
                name: self._without_db(phase, both) for name, phase in self._named(phases, bulk)
            },
        }

    @staticmethod
    def _named(phases: list[Phase], bulk: Phase) -> list[tuple[str, Phase]]:
        return [(p.name, p) for p in [*phases, bulk]]

    def _stage(self, p: Phase) -> dict[str, Any]:
        return {
            "latency_ms": p.e2e.get("stages_ms", {}),
            "cpu": p.cpu_phase,
            "cpu_ms_per_notification": {
                role: round(1000 * v["cpu_s"] / max(1, p.e2e.get("delivered", 0)), 3)
                for role, v in p.cpu_phase.items()
                if role not in ("machine", "other")
            },
            "bottleneck": bottleneck(p.cpu_phase),
            "database": p.db_ops,
        }

    def _without_db(self, p: Phase, ceiling_both: float) -> dict[str, Any]:
        """Notifications/s the other stages' CPU would allow if the database cost nothing."""
        delivered = max(1, p.e2e.get("delivered", 0))
        per = {
            r: p.cpu_phase[r]["cpu_s"] / delivered for r in ("api", "worker", "broker", "provider")
        }
        cores = psutil.cpu_count() or 1
        limits = {"machine": cores / max(sum(per.values()), 1e-9)}
        for role in ("api", "worker"):
            limits[role] = self.processes[role] / max(per[role], 1e-9)
        limit_by = min(limits, key=lambda k: limits[k])
        rate = limits[limit_by]
        return {
            "per_s": round(rate, 1),
            "ratio_of_ceiling": round(rate / ceiling_both, 4),
            "limited_by": limit_by,
            "cpu_ms_per_notification": {r: round(v * 1000, 3) for r, v in per.items()},
            "method": "cores / CPU seconds per delivered notification of api+worker+broker+"
            "provider, capped per single-process role; an estimate, not a measurement",
        }

    def _seed003_body(self, i: int) -> dict[str, Any]:
        return {
            "notification_type": "email",
            "user_id": self.users[i % len(self.users)],
            "template_code": TEMPLATE,
            "variables": {"name": "Ada", "link": "https://example.com/welcome"},
            "request_id": f"req-{self.stack.prefix}-{i}-{time.monotonic_ns()}",
            "priority": 1,
            "metadata": {"title": "Welcome"},
        }

    def _send_body(self, i: int) -> dict[str, Any]:
        return {
            "userId": self.users[i % len(self.users)],
            "channel": "EMAIL",
            "content": {"subject": "Your code", "body": f"Your code is {i:06d}."},
        }

    def _bulk_body(self, i: int) -> dict[str, Any]:
        n, size = len(self.users), self.sizes.bulk_size
        return {
            "userIds": [self.users[(i * size + k) % n] for k in range(min(size, n))],
            "channel": "EMAIL",
            "content": {"subject": "News", "body": "This week's news."},
        }


def _transaction_of(answer: dict[str, Any]) -> str:
    if "transactionId" in answer:
        return str(answer["transactionId"])
    return str(answer["data"]["notification_id"])  # seed 003: transaction id = notification id


def _recipients_of(answer: dict[str, Any], per_call: int) -> int:
    return int(answer.get("recipientCount", 1 if per_call == 1 else per_call))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def bench(
    *,
    sizes: Sizes,
    quick: bool,
    log_level: str,
    log_path: Path,
    console: Console,
    providers: list[str] | None = None,
) -> dict[str, Any]:
    """One whole run: ceiling, stack, phases; everything cleaned up whatever happens."""
    rabbitmq_url = os.environ.get("RABBITMQ_URL") or DEFAULT_RABBITMQ_URL
    mongodb_url = os.environ.get("MONGODB_URL") or None
    stack = Stack(
        StackConfig(
            rabbitmq_url=rabbitmq_url,
            mongodb_url=mongodb_url,
            log_path=log_path,
            log_level=log_level,
            providers=providers or [],
        )
    )
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    console.log(f"ceiling: {sizes.ceiling_messages} messages, prefix {stack.prefix}c")
    ceiling = uvloop.run(
        measure_ceiling(
            url=rabbitmq_url, prefix=f"{stack.prefix}c", messages=sizes.ceiling_messages
        )
    )
    console.log(
        f"ceiling: publish {ceiling.publish_per_s:,.0f}/s, consume {ceiling.consume_per_s:,.0f}/s,"
        f" both {ceiling.publish_consume_per_s:,.0f}/s"
    )
    try:
        console.log(f"starting the system (logs: {log_path})")
        stack.start()
        runner = Bench(stack, sizes, console)
        figures = uvloop.run(
            runner.run_providers(ceiling, providers) if providers else runner.run(ceiling)
        )
    finally:
        console.log("stopping the system and deleting its queues and data")
        stack.stop()
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "run": {
            "prefix": stack.prefix,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "sizes": _sizes_dict(sizes),
            "database": "secantusd-py (embedded)" if stack.embedded_db else "MONGODB_URL",
            "api_processes": int(os.environ.get("NOTIFY_API_PROCESSES", "1")),
            "worker_processes": int(os.environ.get("NOTIFY_WORKER_PROCESSES", "1")),
            "log_level": log_level,
            "cores": psutil.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "duration_s": 0.0,
        },
        **figures,
    }
    if not providers:
        report["targets"] = targets(report)
    report["run"]["duration_s"] = round(time.perf_counter() - started, 1)
    return report


def fanout_memory_run(*, sizes: list[int], log_path: Path, console: Console) -> dict[str, Any]:
    """`--fanout-memory`: the fan-out worker alone against the broker and a database
    (MONGODB_URL, or a SecantusDB of its own in a temporary directory)."""
    from tests.support import EmbeddedMongo

    # The broker and database clients run in this process here: their logs go to stderr, so
    # `--json` keeps stdout for the report.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    rabbitmq_url = os.environ.get("RABBITMQ_URL") or DEFAULT_RABBITMQ_URL
    mongodb_url = os.environ.get("MONGODB_URL")
    load_before = [round(x, 2) for x in os.getloadavg()]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fanmem") as tmp:
        server = None
        if not mongodb_url:
            server = EmbeddedMongo(storage_path=tmp)
            server.start()
            mongodb_url = server.url
        try:
            report = uvloop.run(
                measure_fanout_memory(
                    rabbitmq_url=rabbitmq_url,
                    mongodb_url=mongodb_url,
                    drop_database=server is None,
                    root=ROOT,
                    sizes=sizes,
                    log=log_path,
                    say=console.log,
                )
            )
        finally:
            if server is not None:
                server.stop()
    return {
        **report,
        "database": "secantusd-py (embedded, on disk)" if server is not None else "MONGODB_URL",
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cores": psutil.cpu_count(),
    }


def _sizes_dict(sizes: Sizes) -> dict[str, Any]:
    return {f: getattr(sizes, f) for f in Sizes.__dataclass_fields__}


cli = typer.Typer(add_completion=False)


@cli.command()
def main(
    quick: Annotated[bool, typer.Option("--quick", help="small sizes: done within 60 s")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="print the report as JSON on stdout (table to stderr)")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="also write the JSON report to this file")
    ] = None,
    ceiling_messages: Annotated[int | None, typer.Option(help="messages per ceiling step")] = None,
    subscribers: Annotated[int | None, typer.Option(help="subscribers created first")] = None,
    sends: Annotated[int | None, typer.Option(help="requests per single-send endpoint")] = None,
    concurrency: Annotated[int | None, typer.Option(help="concurrent clients for sends")] = None,
    bulk_calls: Annotated[int | None, typer.Option(help="manage/send-bulk calls")] = None,
    bulk_size: Annotated[int | None, typer.Option(help="recipients per bulk call (≤ 100)")] = None,
    bulk_concurrency: Annotated[int | None, typer.Option(help="concurrent bulk clients")] = None,
    db_notifications: Annotated[
        int | None, typer.Option(help="notifications for the database-alone stage")
    ] = None,
    drain_timeout: Annotated[
        float | None, typer.Option(help="longest wait for a phase's deliveries, seconds")
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            help="run only the end-to-end phase, once per provider's fake: "
            "sendgrid|ses|fcm|apns|twilio|slack|discord|all (repeat or comma-separate)"
        ),
    ] = None,
    inbox_sockets: Annotated[
        int | None, typer.Option(help="inbox phase: open WebSockets (0 skips; --quick: 0)")
    ] = None,
    inbox_sends: Annotated[
        int | None, typer.Option(help="inbox phase: IN_APP sends (default: one per socket)")
    ] = None,
    delay: Annotated[
        bool, typer.Option("--delay", help="with --quick: run the delay phase too (≥ 10 s)")
    ] = False,
    delay_sends: Annotated[
        int | None, typer.Option(help="delayed sends in the delay phase (0 skips it)")
    ] = None,
    activity_records: Annotated[
        int | None,
        typer.Option(help="history records for the activity phase (0 skips it; --quick: 0)"),
    ] = None,
    db_ceiling_documents: Annotated[
        int | None,
        typer.Option(help="documents through the database ceiling (0 skips it)"),
    ] = None,
    topic: Annotated[
        bool,
        typer.Option(
            "--topic", help=f"with --quick: run the topic phase ({QUICK_TOPIC_SUBSCRIBERS:,})"
        ),
    ] = False,
    topic_subscribers: Annotated[
        int | None,
        typer.Option(help="topic phase: subscribers of the topic (0 skips it; --quick: 0)"),
    ] = None,
    fanout_memory: Annotated[
        bool,
        typer.Option(
            "--fanout-memory",
            help="only measure the fan-out worker's peak RSS per topic size (no other phase)",
        ),
    ] = False,
    fanout_memory_sizes: Annotated[
        str, typer.Option(help="--fanout-memory: topic sizes, comma-separated")
    ] = ",".join(str(n) for n in FANOUT_MEMORY_SIZES),
    log_level: Annotated[str, typer.Option(help="NOTIFY_LOG_LEVEL of the system")] = "WARNING",
    log_file: Annotated[Path, typer.Option(help="the system's output")] = ROOT
    / ".data"
    / "bench.log",
) -> None:
    """Measure the broker's ceiling and the system against it; print a table (and JSON)."""
    base = QUICK if quick else DEFAULT
    given = {
        "ceiling_messages": ceiling_messages,
        "subscribers": subscribers,
        "sends": sends,
        "concurrency": concurrency,
        "bulk_calls": bulk_calls,
        "bulk_size": bulk_size,
        "bulk_concurrency": bulk_concurrency,
        "db_notifications": db_notifications,
        "drain_timeout_s": drain_timeout,
        "inbox_sockets": inbox_sockets,
        "inbox_sends": inbox_sends,
        "delay_sends": delay_sends,
        "activity_records": activity_records,
        "db_ceiling_documents": db_ceiling_documents,
        "topic_subscribers": topic_subscribers,
    }
    if quick and delay and delay_sends is None:
        given["delay_sends"] = QUICK_DELAY_SENDS
    if quick and topic and topic_subscribers is None:
        given["topic_subscribers"] = QUICK_TOPIC_SUBSCRIBERS
    values = {**_sizes_dict(base), **{k: v for k, v in given.items() if v is not None}}
    sizes = Sizes(**values)
    if not 1 <= sizes.bulk_size <= 100:
        raise typer.BadParameter("--bulk-size must be between 1 and 100")
    try:
        names = provider_phase.parse_names(provider or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(stderr=json_out)
    if not console.is_terminal:
        console.width = max(console.width, 170)  # a log file or a pipe: keep rows on one line
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if fanout_memory:
        memory = fanout_memory_run(
            sizes=[int(n) for n in fanout_memory_sizes.split(",") if n.strip()],
            log_path=log_file,
            console=console,
        )
        render_fanout_memory(memory, console)
        _write(memory, out=out, json_out=json_out)
        return
    try:
        report = bench(
            sizes=sizes,
            quick=quick,
            log_level=log_level,
            log_path=log_file,
            console=console,
            providers=names,
        )
    except KeyboardInterrupt:
        console.log("interrupted; cleaned up")
        raise typer.Exit(130) from None
    except Exception as exc:
        console.log(f"[red]bench failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if names:
        provider_phase.render(report, console)
    else:
        render(report, console)
        render_inbox(report["inbox"], console)
        if "delay" in report:
            render_delay(report["delay"], console)
        if "activity" in report:
            render_activity(report["activity"], console)
        render_topic(report["topic"], console)
    _write(report, out=out, json_out=json_out)


def _write(report: dict[str, Any], *, out: Path | None, json_out: bool) -> None:
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data + b"\n")
    if json_out:
        sys.stdout.buffer.write(data + b"\n")
        sys.stdout.flush()


if __name__ == "__main__":
    cli()
