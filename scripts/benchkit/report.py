"""The verdicts (bottleneck, targets) and the printed table, from the JSON report."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

BULK_TARGET_RATIO = 0.5  # recipients delivered/s ≥ 50 % of the ceiling's publish+consume
SINGLE_TARGET_PER_S = 2000.0
SINGLE_TARGET_P99_MS = 50.0
SATURATED = 0.85  # a role using this much of its processes' cores sets the pace
MACHINE_FULL = 0.85  # both cores this busy: whoever asks for more CPU waits
_STAGE_ROLES = ("api", "worker", "database", "broker", "provider", "load_generator")


def bottleneck(cpu: dict[str, dict[str, float]]) -> str:
    """Name the role that sets the pace, from CPU use over a phase."""
    ranked = sorted(_STAGE_ROLES, key=lambda r: cpu.get(r, {}).get("saturation", 0.0))
    top = ranked[-1]
    sat = cpu.get(top, {}).get("saturation", 0.0)
    if sat >= SATURATED:
        return f"{top} ({sat:.0%} of its cores)"
    machine = cpu.get("machine", {}).get("machine_share", 0.0)
    if machine >= MACHINE_FULL:
        other = cpu.get("other", {}).get("machine_share", 0.0)
        return f"machine full ({other:.0%} others); top {top} {sat:.0%}"
    return f"none saturated; top {top} {sat:.0%}"


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, as reported (never asserted)."""
    # Issue 16: bulk (and topic) against the tighter of the broker and database ceilings,
    # when the run measured the database's; the broker's alone otherwise.
    bulk = report["bulk"]
    tighter = report.get("tighter_ceiling")
    if "ratio_of_tighter_ceiling" in bulk and tighter:
        bulk_ratio, basis = bulk["ratio_of_tighter_ceiling"], f"{tighter['which']} ceiling"
    else:
        bulk_ratio, basis = bulk.get("ratio_of_ceiling", 0.0), "broker ceiling"
    singles = report["single_sends"]
    best = max(singles.values(), key=lambda s: s.get("accepted_per_s", 0.0))
    return {
        "bulk_delivered_ratio_ge_0_5": {
            "value": bulk_ratio,
            "basis": basis,
            "met": bulk_ratio >= BULK_TARGET_RATIO,
        },
        "single_sends_accepted_ge_2000_per_s": {
            endpoint: {"value": s["accepted_per_s"], "met": s["accepted_per_s"] >= 2000}
            for endpoint, s in singles.items()
        },
        "single_sends_p99_lt_50_ms": {
            endpoint: {"value": s["latency_ms"]["p99"], "met": s["latency_ms"]["p99"] < 50}
            for endpoint, s in singles.items()
        },
        "best_single_endpoint": best["path"],
    }


# Report sections whose rate is recipients delivered end to end (bulk, and topic fan-out if
# the run has it): they are also compared with the tighter of the broker and database ceilings.
_FAN_OUT_SECTIONS = ("bulk", "topic", "topics")


def tighter_ceiling_ratios(figures: dict[str, Any]) -> None:
    """Add `tighter_ceiling` and each fan-out section's `ratio_of_tighter_ceiling`, in place."""
    broker = figures["ceiling"]["publish_consume_per_s"]
    database = figures["database_ceiling"]["per_s"]
    which, rate = ("broker", broker) if broker <= database else ("database", database)
    figures["tighter_ceiling"] = {
        "per_s": rate,
        "which": which,
        "broker_publish_consume_per_s": broker,
        "database_per_s": database,
    }
    for key in _FAN_OUT_SECTIONS:
        section = figures.get(key)
        if not isinstance(section, dict):
            continue
        # bulk names its rate `recipients_delivered_per_s`, the topic phase `per_s`
        delivered = section.get("recipients_delivered_per_s", section.get("per_s"))
        if delivered is not None:
            section["ratio_of_tighter_ceiling"] = round(delivered / max(rate, 1e-9), 4)
            section["tighter_ceiling_basis"] = f"tighter_ceiling ({which})"


def _rate(value: float, ratio: float | None) -> str:
    return f"{value:,.0f}/s" + (f"  ({ratio:.1%})" if ratio is not None else "")


def _lat(p: dict[str, float]) -> str:
    return f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f}"


def render(report: dict[str, Any], console: Console) -> None:
    """Print the report as tables."""
    run, ceiling = report["run"], report["ceiling"]
    console.print(
        f"[bold]notify bench[/bold]  prefix={run['prefix']}  quick={run['quick']}  "
        f"db={run['database']}  api x{run['api_processes']} worker x{run['worker_processes']}  "
        f"log={run['log_level']}  load before={run['load_average_before']}"
    )
    table = Table(title="throughput (ratio = share of the ceiling measured in this run)")
    for col in ("what", "rate (ratio)", "latency p50 / p95 / p99 ms", "notes"):
        table.add_column(col)
    table.add_row(
        "ceiling: publish (confirms pipelined)",
        _rate(ceiling["publish_per_s"], None),
        "",
        f"{ceiling['messages']} msgs of {ceiling['message_bytes']} B",
    )
    table.add_row("ceiling: consume (manual ack)", _rate(ceiling["consume_per_s"], None), "", "")
    table.add_row("ceiling: publish+consume", _rate(ceiling["publish_consume_per_s"], None), "", "")
    dbc = report.get("database_ceiling")
    if dbc:
        table.add_row(
            "ceiling: database (insert_many+claim+outcome)",
            _rate(dbc["per_s"], None),
            "",
            f"{dbc['documents']} docs of {dbc['document_bytes']} B, batches of {dbc['batch']}, "
            f"{dbc['commands_per_batch']:.1f} commands/batch; tighter: "
            f"{report['tighter_ceiling']['which']}",
        )
    for name, s in report["single_sends"].items():
        table.add_row(
            f"API accepted: {s['path']}",
            _rate(s["accepted_per_s"], s["ratio_of_ceiling"]),
            _lat(s["latency_ms"]),
            f"{s['accepted']}/{s['requests']} ok, c={s['concurrency']}, "
            f"client cpu {s['client_cpu_share_of_core']:.0%} of a core",
        )
        e = report["end_to_end"][name]
        table.add_row(
            f"  end to end → DELIVERED ({name})",
            _rate(e.get("per_s", 0.0), e.get("ratio_of_ceiling")),
            _lat(e["latency_ms"]) if "latency_ms" in e else "",
            f"{e['delivered']}/{e['records']} delivered",
        )
    b = report["bulk"]
    table.add_row(
        f"bulk: recipients DELIVERED ({b['recipients_per_call']}/call)",
        _rate(b["recipients_delivered_per_s"], b["ratio_of_ceiling"]),
        _lat(b["end_to_end"]["latency_ms"]) if "latency_ms" in b["end_to_end"] else "",
        f"{b['end_to_end']['delivered']}/{b['recipients']} delivered; call p50 "
        f"{b['call_latency_ms']['p50']:.0f} ms"
        + (
            f"; {b['ratio_of_tighter_ceiling']:.1%} of the tighter ceiling"
            if "ratio_of_tighter_ceiling" in b
            else ""
        ),
    )
    db = report.get("database_alone")
    if db:
        table.add_row(
            "database alone: manage/send sequence",
            _rate(db["send"]["per_s"], db["send"].get("ratio_of_ceiling")),
            "",
            f"{sum(o['calls_per_notification'] for o in db['send']['ops'].values()):.0f} "
            "calls/notification",
        )
        table.add_row(
            "database alone: bulk sequence",
            _rate(db["bulk"]["per_s"], db["bulk"].get("ratio_of_ceiling")),
            "",
            "",
        )
    without = report.get("pipeline_without_database")
    if without:
        for name, w in without.items():
            table.add_row(
                f"estimate without the db: {name}",
                _rate(w["per_s"], w["ratio_of_ceiling"]),
                "",
                "from CPU per notification",
            )
    console.print(table)

    stages = Table(title="where the time goes: stage latency ms p50 / p99; CPU in cores used")
    stages.add_column("phase")
    for col in ("api", "broker", "worker_db", "provider"):
        stages.add_column(col, justify="right")
    for col in ("cpu api", "worker", "db", "broker", "prov.", "loadgen", "other"):
        stages.add_column(col, justify="right")
    stages.add_column("bottleneck")
    for phase, data in report["stages"].items():
        ms = data.get("latency_ms", {})
        cells = [
            f"{ms[k]['p50']:.0f} / {ms[k]['p99']:.0f}" if k in ms else ""
            for k in ("api", "broker", "worker_db", "provider")
        ]
        cpu = data["cpu"]
        cores = [
            f"{cpu[r]['cores']:.2f}"
            for r in ("api", "worker", "database", "broker", "provider", "load_generator", "other")
        ]
        stages.add_row(phase, *cells, *cores, data["bottleneck"])
    console.print(stages)
    _render_database_ops(report, console)
    t = report["targets"]
    console.print(
        f"targets: bulk ≥ 50% of the {t['bulk_delivered_ratio_ge_0_5'].get('basis', 'ceiling')}: "
        f"{'met' if t['bulk_delivered_ratio_ge_0_5']['met'] else 'NOT met'} "
        f"({t['bulk_delivered_ratio_ge_0_5']['value']:.1%}); "
        + "; ".join(
            f"{k}: {v['value']:,.0f}/s {'met' if v['met'] else 'NOT met'}, p99 "
            f"{t['single_sends_p99_lt_50_ms'][k]['value']:.0f} ms "
            f"{'met' if t['single_sends_p99_lt_50_ms'][k]['met'] else 'NOT met'}"
            for k, v in t["single_sends_accepted_ge_2000_per_s"].items()
        )
    )


def _render_database_ops(report: dict[str, Any], console: Console) -> None:
    """Database commands per delivered notification, per phase, from the server's counters."""
    table = Table(
        title="database commands per delivered notification (serverStatus opcounters; "
        "documents: only where the server counts them)"
    )
    table.add_column("phase")
    for col in ("insert", "query", "update", "delete", "getmore", "command", "total", "docs"):
        table.add_column(col, justify="right")
    rows = [(phase, data.get("database")) for phase, data in report["stages"].items()]
    topic = report.get("topic")
    if isinstance(topic, dict):
        rows.append(("topic", topic.get("database")))
    for phase, db in rows:
        if not db:
            continue
        per = db["by_counter_per_notification"]
        docs = db.get("documents_per_notification")
        table.add_row(
            phase,
            *(f"{per[k]:.2f}" for k in ("insert", "query", "update", "delete", "getmore")),
            f"{per['command']:.2f}",
            f"{db['commands_per_notification']:.2f}",
            "n/a" if docs is None else " ".join(f"{k[:3]} {v:.1f}" for k, v in docs.items()),
        )
    console.print(table)
