"""What the operator sees: the consoles, JSON, and the tables of dead letters and operations.

`--json` prints the admin RPCs' shapes (`shared.dlq.views`); the tables are made from the
same views, so both say the same thing.
"""

from __future__ import annotations

from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from shared.dlq.results import OperationResult
from shared.dlq.views import letter_view, result_view

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout."""
    out.out(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), highlight=False)


def _short_time(value: str | None) -> str:
    """`2025-01-31T12:00:00.123Z` as `2025-01-31 12:00:00Z` (tables only; JSON keeps ms)."""
    return f"{value[:19].replace('T', ' ')}Z" if value else ""


def letters_table(
    rows: list[dict[str, Any]], *, title: str | None = None, with_record: bool = True
) -> Table:
    """Dead letters, one per line; `pos` is the place in its channel's DLQ (0 = next out).

    `record` is the notification record's status now (`-`: the record is gone).
    """
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("pos", "notification", "transaction", "tenant", "channel", "reason"):
        table.add_column(name, no_wrap=True)
    table.add_column("tries", justify="right")
    table.add_column("failed at", no_wrap=True)
    if with_record:
        table.add_column("record", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for row in rows:
        cells = [
            str(row["position"]),
            row["notificationId"] or "",
            row["transactionId"] or "",
            row["tenantId"] or "",
            row["channel"],
            row["reason"] or "",
            str(row["attempts"]),
            _short_time(row["failedAt"]),
        ]
        if with_record:
            cells.append(row.get("recordStatus") or "-")
        table.add_row(*cells, (row["detail"] or "")[:80])
    return table


def print_detail(view: dict[str, Any]) -> None:
    """One dead letter (`detail_view`): its row, the message's headers and body, the record."""
    out.print(letters_table([view], title=f"dead letter {view['notificationId']}"))
    message = view["message"]
    headers = Table(title="message", title_justify="left", show_header=False)
    headers.add_column("name")
    headers.add_column("value", overflow="fold")
    for name, value in sorted(message["headers"].items()):
        headers.add_row(name, str(value))
    headers.add_row("(body)", orjson.dumps(message["body"]).decode())
    out.print(headers)
    record = view["record"]
    if record is None:
        out.print("record: [red]missing[/red]")
        return
    out.print(
        f"record: {record['status']} · replays {record['replays']} · reason "
        f"{record['failureReason']} · dead-lettered {record['deadLetteredAt']}"
    )
    attempts = Table(title="attempts", title_justify="left")
    for name in ("n", "at", "provider", "outcome", "reason", "detail", "ms"):
        attempts.add_column(name, overflow="fold")
    for a in record["attempts"]:
        attempts.add_row(
            str(a["attempt"]),
            a["at"] or "",
            a["provider"] or "",
            a["outcome"] or "",
            a["reason"] or "",
            (a["detail"] or "")[:60],
            str(a["durationMs"]),
        )
    out.print(attempts)


def print_result(result: OperationResult, *, verb: str, as_json: bool) -> None:
    """A replay's or purge's outcome: what moved (or would), what was skipped, the counts."""
    view = result_view(result)
    if as_json:
        print_json(view)
        return
    if result.affected:
        title = f"would be {verb}" if result.dry_run else verb
        rows = [letter_view(x) for x in result.affected]
        out.print(letters_table(rows, title=title, with_record=False))
    if result.skipped:
        skipped = Table(title="skipped (left in the DLQ)", title_justify="left")
        for name in ("notification", "transaction", "reason"):
            skipped.add_column(name, overflow="fold")
        for s in view["skipped"]:
            skipped.add_row(s["notificationId"] or "", s["transactionId"] or "", s["reason"])
        out.print(skipped)
    done = f"would be {verb}" if result.dry_run else verb
    more = " · stopped before the end (limit)" if result.has_more else ""
    out.print(
        f"{len(result.affected)} {done}, {len(result.skipped)} skipped, "
        f"{result.scanned} scanned · operation {result.operation_id}{more}"
    )


def operations_table(views: list[dict[str, Any]]) -> Table:
    """The audit trail (`operation_view` rows), one operation per line."""
    table = Table()
    for name in ("at", "operation", "action", "dry run", "actor", "tenant", "moved", "skipped"):
        table.add_column(name, overflow="fold")
    table.add_column("error", overflow="fold")
    for v in views:
        table.add_row(
            v["at"] or "",
            v["operationId"],
            v["action"] or "",
            "yes" if v["dryRun"] else "no",
            v["actor"] or "",
            v["tenantId"] or "(all)",
            str(v["count"]),
            str(len(v["skipped"])),
            v["error"] or "",
        )
    return table
