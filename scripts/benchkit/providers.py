"""`scripts/bench --provider NAME`: the end-to-end phase through each provider's local fake.

Each fake runs in its own process (`python -m tests.fakes.serve NAME --lean`), answers at once
and counts what it accepted (`GET /stats`). Per provider the bench configures it (deactivating
the other provider of the same channel, then waiting out the workers' config cache), creates
subscribers with that provider's kind of address, and measures `manage/send` to DELIVERED: the
delivered/s of the providers come from one run, so an adapter much slower than the others shows.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devrunner
from rich.console import Console
from rich.table import Table

NAMES = ("sendgrid", "ses", "fcm", "apns", "twilio", "slack", "discord", "novu")
CHANNEL = {
    "sendgrid": "EMAIL",
    "ses": "EMAIL",
    "fcm": "PUSH",
    "apns": "PUSH",
    "twilio": "SMS",
    "slack": "CHAT",
    "discord": "CHAT",
    "novu": "EMAIL",  # the fake's config also names PUSH and IN_APP; FCM sorts first there
}
CONFIG_CACHE_S = 5.5  # workers re-read provider configs this often (workers/providers.py)
FAKE_READY_S = 20.0


@dataclass(frozen=True, slots=True)
class FakeProvider:
    """One started fake: where it answers, where it counts, how to configure a tenant for it."""

    name: str
    url: str
    stats_url: str
    configure: dict[str, Any]


def parse_names(given: list[str]) -> list[str]:
    """`--provider` values (repeated or comma-separated, or `all`) in a stable order."""
    names: list[str] = []
    for value in given:
        for name in value.lower().split(","):
            name = name.strip()
            if name == "all":
                names.extend(NAMES)
            elif name in NAMES:
                names.append(name)
            elif name:
                raise ValueError(f"--provider {name}: must be one of {', '.join(NAMES)} or all")
    return list(dict.fromkeys(names))


def start_fakes(
    sup: devrunner.Supervisor, env: dict[str, str], names: list[str], workdir: Path
) -> dict[str, FakeProvider]:
    """Start `tests.fakes.serve` for each name; wait until each has written its configuration."""
    started: dict[str, tuple[Path, str]] = {}
    for name in names:
        port, stats_port = devrunner.free_port(), devrunner.free_port()
        out = workdir / f"fake-{name}.json"
        argv = [sys.executable, "-m", "tests.fakes.serve", name, "--port", str(port)]
        argv += ["--stats-port", str(stats_port), "--lean", "--config-out", str(out)]
        sup.start(f"fake_{name}", argv, env)
        started[name] = (out, f"http://127.0.0.1:{stats_port}/stats")
    fakes: dict[str, FakeProvider] = {}
    deadline = time.monotonic() + FAKE_READY_S
    for name, (out, stats_url) in started.items():
        while not out.exists() or not out.read_text().strip():
            if time.monotonic() > deadline or sup.first_dead(sup.children):
                raise RuntimeError(f"the fake {name} did not start")
            time.sleep(0.1)
        config = json.loads(out.read_text())
        fakes[name] = FakeProvider(
            name=name,
            url=config["configure"]["endpoint"],
            stats_url=stats_url,
            configure=config["configure"],
        )
    return fakes


def subscriber_data(name: str, fake: FakeProvider, i: int) -> dict[str, Any]:
    """The address a bench subscriber of this provider has (push tokens are registered apart)."""
    if CHANNEL[name] == "EMAIL":
        return {"email": f"{name}{i}@example.com"}
    if name == "twilio":
        return {"phone": f"+1415{i:07d}"}
    if name == "slack":
        return {"chat": {"slackWebhookUrl": f"{fake.url}/services/T0BENCH/B0BENCH/{i}"}}
    if name == "discord":
        return {"chat": {"discordWebhookUrl": f"{fake.url}/api/webhooks/{i}/bench"}}
    return {}


def push_token(name: str, i: int) -> dict[str, str]:
    """The device token a bench subscriber of a push provider registers."""
    return {"apnsToken": f"{i:064x}"} if name == "apns" else {"fcmToken": f"bench-fcm-{i}"}


def figures(name: str, e2e: dict[str, Any], load: Any, ceiling_both: float) -> dict[str, Any]:
    """One provider's row of the report."""
    rate = float(e2e.get("per_s", 0.0))
    return {
        "channel": CHANNEL[name],
        "requests": load.requests,
        "accepted": load.accepted,
        "errors": dict(load.errors),
        "delivered": e2e.get("delivered", 0),
        "records": e2e.get("records", 0),
        "statuses": e2e.get("statuses", {}),
        "delivered_per_s": rate,
        "ratio_of_ceiling": round(rate / ceiling_both, 4) if ceiling_both else None,
        "ratio_basis": "ceiling.publish_consume_per_s",
        "latency_ms": e2e.get("latency_ms", {}),
        "provider_ms": e2e.get("stages_ms", {}).get("provider", {}),
    }


def render(report: dict[str, Any], console: Console) -> None:
    """The per-provider table."""
    table = Table(title="end to end per provider: manage/send → DELIVERED (one run)")
    for col in (
        "provider",
        "channel",
        "delivered/s (ratio)",
        "p50 / p99 ms",
        "provider p50 ms",
        "delivered",
    ):
        table.add_column(col)
    best = max((p["delivered_per_s"] for p in report["providers"].values()), default=0.0) or 1.0
    for name, p in report["providers"].items():
        lat = p["latency_ms"] or {"p50": 0.0, "p99": 0.0}
        table.add_row(
            name,
            p["channel"],
            f"{p['delivered_per_s']:,.0f}/s  ({p['ratio_of_ceiling']:.1%})  "
            f"{p['delivered_per_s'] / best:.0%} of the fastest",
            f"{lat['p50']:.0f} / {lat['p99']:.0f}",
            f"{(p['provider_ms'] or {}).get('p50', 0.0):.1f}",
            f"{p['delivered']}/{p['records']}",
        )
    console.print(table)


async def settle_config(switched: bool) -> None:
    """After another provider of the channel was deactivated, let every worker see it."""
    if switched:
        await asyncio.sleep(CONFIG_CACHE_S)


async def run_providers(
    bench: Any, gen: Any, reader: Any, meter: Any, names: list[str]
) -> dict[str, Any]:
    """The end-to-end phase once per provider; `bench` is benchrunner's `Bench`."""
    stack, sizes = bench.stack, bench.sizes
    results: dict[str, Any] = {}
    active: dict[str, str] = {}  # channel -> provider configured active
    for name in names:
        fake: FakeProvider = stack.fakes[name]
        channel = CHANNEL[name]
        switched = False
        previous = active.get(channel)
        if previous is not None and previous != name:
            await _configure(gen, {**stack.fakes[previous].configure, "active": False})
            switched = True
        await _configure(gen, {**fake.configure, "active": True})
        active[channel] = name
        await settle_config(switched)
        users = await _subscribers(gen, name, fake, sizes.subscribers)
        bench.stats_url = fake.stats_url

        def body_for(i: int, users: list[str] = users, channel: str = channel) -> dict[str, Any]:
            return {
                "userId": users[i % len(users)],
                "channel": channel,
                "content": {"title": "Your code", "body": f"Your code is {i:06d}."},
            }

        path = "/api/v1/notifications/manage/send"
        await bench.phase(
            gen,
            reader,
            meter,
            name=f"warm-up {name}",
            path=path,
            body_for=body_for,
            count=min(50, sizes.sends),
            concurrency=8,
        )
        phase = await bench.phase(
            gen,
            reader,
            meter,
            name=f"provider {name}",
            path=path,
            body_for=body_for,
            count=sizes.sends,
            concurrency=sizes.concurrency,
        )
        results[name] = figures(name, phase.e2e, phase.load, bench.ceiling_both)
    return results


async def _configure(gen: Any, body: dict[str, Any]) -> None:
    status, answer = await gen.call("/api/v1/notifications/manage/configure-provider", body)
    if status != 200:
        raise RuntimeError(f"configure-provider {body.get('providerType')}: HTTP {status} {answer}")


async def _subscribers(gen: Any, name: str, fake: FakeProvider, count: int) -> list[str]:
    """Create `count` subscribers reachable through this provider; their ids."""
    users = [f"bench-{name}-{i}" for i in range(count)]
    created = await gen.burst(
        path="/api/v1/notifications/manage/create-subscriber",
        body_for=lambda i: {"userId": users[i], "subscriberData": subscriber_data(name, fake, i)},
        count=count,
        concurrency=16,
    )
    if created.accepted != count:
        raise RuntimeError(f"create-subscriber for {name} failed: {dict(created.errors)}")
    if CHANNEL[name] == "PUSH":
        gate = asyncio.Semaphore(16)

        async def register(i: int) -> None:
            async with gate:
                status, answer = await gen.call(
                    "/api/v1/notifications/register-push-device",
                    {**push_token(name, i), "platform": "IOS", "deviceId": f"d{i}"},
                    headers={"X-User-ID": users[i], "X-Tenant-ID": "default"},
                )
            if status != 200:
                raise RuntimeError(f"register-push-device: HTTP {status} {answer}")

        await asyncio.gather(*(register(i) for i in range(count)))
    return users
