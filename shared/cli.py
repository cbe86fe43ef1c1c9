"""`notifyctl`: operator commands. `notifyctl dlq list|show|replay|purge|history`.

Settings come from the environment like every process (`NOTIFY_*`, `RABBITMQ_URL`,
`MONGODB_URL`), read here at the entry point. The work is `shared.dlq.DeadLetters`, the same
code the admin RPCs run; the CLI may act on every tenant (`--tenant` narrows it).

Exit codes: 0 done; 1 nothing matched (show, replay, purge) or the confirmation was declined;
2 bad usage; 3 RabbitMQ or MongoDB unavailable; 4 another operation holds a DLQ (retry).
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from pymongo.errors import PyMongoError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from shared.db.client import connect_database
from shared.dlq.model import DeadLetterFilter
from shared.dlq.ops import DeadLetters, check_selection
from shared.dlq.results import Action, OperationResult
from shared.dlq.results import Progress as OpProgress
from shared.dlq.views import (
    detail_view,
    letter_view,
    listing_view,
    operation_view,
    result_view,
)
from shared.domain import Channel
from shared.errors import Busy, Unavailable, ValidationFailed
from shared.logging import configure_logging
from shared.messaging.topology import Topology
from shared.settings import Settings

EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_BUSY = 0, 1, 2, 3, 4

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Operator commands of the notify service."
)
dlq = typer.Typer(
    no_args_is_help=True,
    help="Dead-letter queues: list, show, replay and purge failed notifications.",
)
app.add_typer(dlq, name="dlq")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ChannelsOpt = Annotated[
    list[Channel] | None,
    typer.Option("--channel", "-c", case_sensitive=False, help="Only this channel (repeatable)."),
]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Only this failure reason.")]
BeforeOpt = Annotated[
    str | None,
    typer.Option("--failed-before", help="ISO-8601; failed before this (naive = UTC)."),
]
AfterOpt = Annotated[
    str | None,
    typer.Option("--failed-after", help="ISO-8601; failed at or after this (naive = UTC)."),
]
TxnOpt = Annotated[
    list[str] | None,
    typer.Option("--transaction-id", "-t", help="Only these transactions (repeatable)."),
]
NtfOpt = Annotated[
    list[str] | None,
    typer.Option("--notification-id", "-n", help="Only these notifications (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Say what would move; move nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every matching message.")]


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "must be an ISO-8601 date-time such as 2025-01-31T12:00:00Z", param_hint=option
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _filters(
    *,
    channels: list[Channel] | None,
    tenant: str | None,
    reason: str | None,
    failed_before: str | None,
    failed_after: str | None,
    transaction_ids: list[str] | None = None,
    notification_ids: list[str] | None = None,
) -> DeadLetterFilter:
    return DeadLetterFilter(
        channels=frozenset(channels or Channel),
        tenant_id=tenant,
        reason=reason,
        failed_before=_when(failed_before, "--failed-before"),
        failed_after=_when(failed_after, "--failed-after"),
        transaction_ids=frozenset(transaction_ids or ()),
        notification_ids=frozenset(notification_ids or ()),
    )


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _print_json(value: Any) -> None:
    out.out(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), highlight=False)


def _run(work: Callable[[DeadLetters], Awaitable[int]]) -> None:
    """Build the resources from the settings, run `work`, map failures to exit codes."""
    try:
        settings = Settings()
    except ValueError as exc:
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    level = settings.log_level if settings.log_level.upper() == "DEBUG" else "WARNING"
    configure_logging(settings.model_copy(update={"log_level": level}), process="notifyctl")
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # its failures are reported below

    async def main() -> int:
        db = connect_database(
            url=settings.mongodb_url,
            name=settings.database_name,
            timeout_ms=settings.mongo_timeout_ms,
        )
        try:
            ops = DeadLetters(
                db=db,
                amqp_url=settings.rabbitmq_url,
                topology=Topology(settings.prefix),
                timeout_s=settings.publish_timeout_s,
                lock_wait_s=settings.publish_timeout_s,
            )
            return await work(ops)
        finally:
            await db.close()

    try:
        code = asyncio.run(main())
    except Busy as exc:
        err.print(f"[yellow]busy:[/yellow] {exc.message}")
        code = EXIT_BUSY
    except Unavailable as exc:
        err.print(f"[red]unavailable:[/red] {exc.message}")
        code = EXIT_UNAVAILABLE
    except PyMongoError as exc:
        err.print(f"[red]unavailable:[/red] MongoDB: {type(exc).__name__}: {str(exc)[:200]}")
        code = EXIT_UNAVAILABLE
    except ValidationFailed as exc:
        err.print(f"[red]error:[/red] {'; '.join(exc.details)}")
        code = EXIT_USAGE
    raise typer.Exit(code)


def _short_time(value: str | None) -> str:
    """`2025-01-31T12:00:00.123Z` as `2025-01-31 12:00:00Z` (tables only; JSON keeps ms)."""
    return f"{value[:19].replace('T', ' ')}Z" if value else ""


def _letters_table(
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


@dlq.command("list")
def list_command(
    channel: ChannelsOpt = None,
    tenant: TenantOpt = None,
    reason: ReasonOpt = None,
    failed_before: BeforeOpt = None,
    failed_after: AfterOpt = None,
    transaction_id: TxnOpt = None,
    notification_id: NtfOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Dead letters, oldest first (looking moves and reorders nothing)."""
    filters = _filters(
        channels=channel,
        tenant=tenant,
        reason=reason,
        failed_before=failed_before,
        failed_after=failed_after,
        transaction_ids=transaction_id,
        notification_ids=notification_id,
    )

    async def work(ops: DeadLetters) -> int:
        view = listing_view(await ops.list_dead_letters(filters=filters, limit=limit))
        if as_json:
            _print_json(view)
            return EXIT_OK
        out.print(_letters_table(view["deadLetters"]))
        more = " · more may match (raise --limit)" if view["hasMore"] else ""
        out.print(
            f"{view['count']} shown · {view['scanned']} scanned of {view['queueDepth']}"
            f" in the DLQs{more}"
        )
        return EXIT_OK

    _run(work)


@dlq.command("show")
def show_command(
    message_id: Annotated[str, typer.Argument(help="A notification id or a transaction id.")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One notification's dead letter (or a transaction's): headers, body, record, attempts."""

    async def work(ops: DeadLetters) -> int:
        details = await ops.get_dead_letters(tenant_id=tenant, notification_id=message_id)
        if not details:
            details = await ops.get_dead_letters(tenant_id=tenant, transaction_id=message_id)
        views = [detail_view(d) for d in details]
        if as_json:
            _print_json({"deadLetters": views})
        elif not views:
            err.print(f"no dead letter for {message_id}")
        else:
            for view in views:
                _print_detail(view)
        return EXIT_OK if views else EXIT_NOTHING

    _run(work)


def _print_detail(view: dict[str, Any]) -> None:
    out.print(_letters_table([view], title=f"dead letter {view['notificationId']}"))
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


def _change(
    *,
    action: Action,
    filters: DeadLetterFilter,
    limit: int | None,
    all_matching: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Replay or purge: preview and confirm (unless --yes / --dry-run), then act."""
    try:
        check_selection(filters=filters, limit=limit, all_matching=all_matching)
    except ValidationFailed:
        err.print(
            f"[red]error:[/red] say what to {action}: --transaction-id, --notification-id, "
            "--limit N or --all (--all and --limit do not combine)"
        )
        raise typer.Exit(EXIT_USAGE) from None
    verb = "replayed" if action == "replay" else "purged"
    actor = _actor()

    async def run(
        ops: DeadLetters, chosen: DeadLetterFilter, *, dry: bool, limit: int | None, every: bool
    ) -> OperationResult:
        with _ProgressBar(enabled=not as_json and not dry) as report:
            return await ops.change_dead_letters(
                action=action,
                filters=chosen,
                actor=actor,
                dry_run=dry,
                limit=limit,
                all_matching=every,
                on_progress=report,
            )

    async def work(ops: DeadLetters) -> int:
        if dry_run or not yes:
            preview = await run(ops, filters, dry=True, limit=limit, every=all_matching)
            if dry_run or not preview.affected:
                _print_result(preview, verb=verb, as_json=as_json)
                return EXIT_OK if preview.affected else EXIT_NOTHING
            _print_result(preview, verb=verb, as_json=False)
            if not typer.confirm(f"{action.capitalize()} {len(preview.affected)} message(s)?"):
                err.print("nothing done")
                return EXIT_NOTHING
            # Exactly what was shown: the messages previewed, whatever arrived since.
            shown = dataclasses.replace(
                filters,
                notification_ids=frozenset(x.notification_id for x in preview.affected),
            )
            result = await run(ops, shown, dry=False, limit=None, every=True)
        else:
            result = await run(ops, filters, dry=False, limit=limit, every=all_matching)
        _print_result(result, verb=verb, as_json=as_json)
        return EXIT_OK if result.affected else EXIT_NOTHING

    _run(work)


class _ProgressBar:
    """A rich progress bar on stderr fed by the operation's progress reports."""

    def __init__(self, *, enabled: bool) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[affected]} moved"),
            console=err,
            transient=True,
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[OpProgress], None]:
        self._bar.start()
        return self._report

    def __exit__(self, *_: object) -> None:
        self._bar.stop()

    def _report(self, p: OpProgress) -> None:
        if p.queue not in self._tasks:
            self._tasks[p.queue] = self._bar.add_task(p.queue, total=p.total, affected=0)
        self._bar.update(self._tasks[p.queue], completed=p.scanned, affected=p.affected)


def _print_result(result: OperationResult, *, verb: str, as_json: bool) -> None:
    view = result_view(result)
    if as_json:
        _print_json(view)
        return
    if result.affected:
        title = f"would be {verb}" if result.dry_run else verb
        rows = [letter_view(x) for x in result.affected]
        out.print(_letters_table(rows, title=title, with_record=False))
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


@dlq.command("replay")
def replay_command(
    channel: ChannelsOpt = None,
    tenant: TenantOpt = None,
    reason: ReasonOpt = None,
    failed_before: BeforeOpt = None,
    failed_after: AfterOpt = None,
    transaction_id: TxnOpt = None,
    notification_id: NtfOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N replays.")] = None,
    all_matching: AllOpt = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send dead letters back to their original queue; the workers deliver them again."""
    _change(
        action="replay",
        filters=_filters(
            channels=channel,
            tenant=tenant,
            reason=reason,
            failed_before=failed_before,
            failed_after=failed_after,
            transaction_ids=transaction_id,
            notification_ids=notification_id,
        ),
        limit=limit,
        all_matching=all_matching,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
    )


@dlq.command("purge")
def purge_command(
    channel: ChannelsOpt = None,
    tenant: TenantOpt = None,
    reason: ReasonOpt = None,
    failed_before: BeforeOpt = None,
    failed_after: AfterOpt = None,
    transaction_id: TxnOpt = None,
    notification_id: NtfOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N messages.")] = None,
    all_matching: AllOpt = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove dead letters; the notification records stay as they are (FAILED)."""
    _change(
        action="purge",
        filters=_filters(
            channels=channel,
            tenant=tenant,
            reason=reason,
            failed_before=failed_before,
            failed_after=failed_after,
            transaction_ids=transaction_id,
            notification_ids=notification_id,
        ),
        limit=limit,
        all_matching=all_matching,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
    )


class HistoryAction(StrEnum):
    """What `history --action` may name."""

    REPLAY = "replay"
    PURGE = "purge"


@dlq.command("history")
def history_command(
    tenant: TenantOpt = None,
    action: Annotated[HistoryAction | None, typer.Option("--action", help="Only these.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail of replays and purges (dry runs included), newest first."""

    async def work(ops: DeadLetters) -> int:
        docs = await ops.list_operations(
            tenant_id=tenant,
            action=None
            if action is None
            else ("replay" if action is HistoryAction.REPLAY else "purge"),
            limit=limit,
        )
        views = [operation_view(d) for d in docs]
        if as_json:
            _print_json({"operations": views})
            return EXIT_OK
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
        out.print(table)
        return EXIT_OK

    _run(work)


if __name__ == "__main__":
    app()
