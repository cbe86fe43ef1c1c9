"""The commands that move messages: `dlq replay` and `dlq purge`, one flow for both.

Without `--yes` a command first runs as a dry run, shows it and asks; the answer acts on
exactly the messages shown. No `from __future__ import annotations` here: `change_command`
builds each command's `--limit` help at run time, and typer reads the annotations of the
function it makes, which must therefore be evaluated objects, not strings.
"""

import dataclasses
from collections.abc import Callable
from typing import Annotated

import typer

from notifyctl.options import AllOpt, DryRunOpt, JsonOpt, YesOpt, with_filter_options
from notifyctl.output import err, print_result
from notifyctl.progress import ProgressBar
from notifyctl.session import EXIT_NOTHING, EXIT_OK, EXIT_USAGE, actor, run
from shared.dlq.model import DeadLetterFilter
from shared.dlq.ops import DeadLetters, check_selection
from shared.dlq.results import Action, OperationResult
from shared.errors import ValidationFailed


def change_command(*, action: Action, summary: str, limit_help: str) -> Callable[..., None]:
    """The `dlq replay` or `dlq purge` command: the same options and flow, its own help."""
    verb = "replayed" if action == "replay" else "purged"

    def command(
        filters: DeadLetterFilter,
        *,
        limit: Annotated[int | None, typer.Option("--limit", min=1, help=limit_help)] = None,
        all_matching: AllOpt = False,
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        # Preview and confirm (unless --yes / --dry-run), then act.
        try:
            check_selection(filters=filters, limit=limit, all_matching=all_matching)
        except ValidationFailed:
            err.print(
                f"[red]error:[/red] say what to {action}: --transaction-id, --notification-id, "
                "--limit N or --all (--all and --limit do not combine)"
            )
            raise typer.Exit(EXIT_USAGE) from None
        who = actor()

        async def apply(
            ops: DeadLetters, chosen: DeadLetterFilter, *, dry: bool, limit: int | None, every: bool
        ) -> OperationResult:
            with ProgressBar(enabled=not as_json and not dry) as report:
                return await ops.change_dead_letters(
                    action=action,
                    filters=chosen,
                    actor=who,
                    dry_run=dry,
                    limit=limit,
                    all_matching=every,
                    on_progress=report,
                )

        async def work(ops: DeadLetters) -> int:
            if dry_run or not yes:
                preview = await apply(ops, filters, dry=True, limit=limit, every=all_matching)
                if dry_run or not preview.affected:
                    print_result(preview, verb=verb, as_json=as_json)
                    return EXIT_OK if preview.affected else EXIT_NOTHING
                print_result(preview, verb=verb, as_json=False)
                if not typer.confirm(f"{action.capitalize()} {len(preview.affected)} message(s)?"):
                    err.print("nothing done")
                    return EXIT_NOTHING
                # Exactly what was shown: the messages previewed, whatever arrived since.
                shown = dataclasses.replace(
                    filters,
                    notification_ids=frozenset(x.notification_id for x in preview.affected),
                )
                result = await apply(ops, shown, dry=False, limit=None, every=True)
            else:
                result = await apply(ops, filters, dry=False, limit=limit, every=all_matching)
            print_result(result, verb=verb, as_json=as_json)
            return EXIT_OK if result.affected else EXIT_NOTHING

        run(work)

    command.__doc__ = summary  # typer's help for the command
    command.__name__ = command.__qualname__ = f"{action}_command"
    return with_filter_options(command)


replay_command = change_command(
    action="replay",
    summary="Send dead letters back to their original queue; the workers deliver them again.",
    limit_help="At most N replays.",
)
purge_command = change_command(
    action="purge",
    summary="Remove dead letters; the notification records stay as they are (FAILED).",
    limit_help="At most N messages.",
)
