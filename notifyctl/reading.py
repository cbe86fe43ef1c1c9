"""The commands that look and move nothing: `dlq list`, `dlq show`, `dlq history`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from notifyctl.options import JsonOpt, TenantOpt, with_filter_options
from notifyctl.output import err, letters_table, operations_table, out, print_detail, print_json
from notifyctl.session import EXIT_NOTHING, EXIT_OK, run
from shared.dlq.model import DeadLetterFilter
from shared.dlq.ops import DeadLetters
from shared.dlq.views import detail_view, listing_view, operation_view


@with_filter_options
def list_command(
    filters: DeadLetterFilter,
    *,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Dead letters, oldest first (looking moves and reorders nothing)."""

    async def work(ops: DeadLetters) -> int:
        view = listing_view(await ops.list_dead_letters(filters=filters, limit=limit))
        if as_json:
            print_json(view)
            return EXIT_OK
        out.print(letters_table(view["deadLetters"]))
        more = " · more may match (raise --limit)" if view["hasMore"] else ""
        out.print(
            f"{view['count']} shown · {view['scanned']} scanned of {view['queueDepth']}"
            f" in the DLQs{more}"
        )
        return EXIT_OK

    run(work)


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
            print_json({"deadLetters": views})
        elif not views:
            err.print(f"no dead letter for {message_id}")
        else:
            for view in views:
                print_detail(view)
        return EXIT_OK if views else EXIT_NOTHING

    run(work)


class HistoryAction(StrEnum):
    """What `history --action` may name."""

    REPLAY = "replay"
    PURGE = "purge"


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
            print_json({"operations": views})
        else:
            out.print(operations_table(views))
        return EXIT_OK

    run(work)
