"""The options the `dlq` commands share, and the `DeadLetterFilter` they make."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from shared.dlq.model import DeadLetterFilter
from shared.domain import Channel

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


def parse_when(value: str | None, *, option: str) -> datetime | None:
    """An ISO-8601 option value in UTC (naive = UTC); bad text is a usage error."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "must be an ISO-8601 date-time such as 2025-01-31T12:00:00Z", param_hint=option
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def build_filters(
    *,
    channel: list[Channel] | None,
    tenant: str | None,
    reason: str | None,
    failed_before: str | None,
    failed_after: str | None,
    transaction_id: list[str] | None,
    notification_id: list[str] | None,
) -> DeadLetterFilter:
    """The filter the options describe (by their parameter names); no `--channel`: all."""
    return DeadLetterFilter(
        channels=frozenset(channel or Channel),
        tenant_id=tenant,
        reason=reason,
        failed_before=parse_when(failed_before, option="--failed-before"),
        failed_after=parse_when(failed_after, option="--failed-after"),
        transaction_ids=frozenset(transaction_id or ()),
        notification_ids=frozenset(notification_id or ()),
    )


# The filter options, in the order `--help` lists them, ahead of each command's own.
_FILTER_PARAMS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    for name, annotation in (
        ("channel", ChannelsOpt),
        ("tenant", TenantOpt),
        ("reason", ReasonOpt),
        ("failed_before", BeforeOpt),
        ("failed_after", AfterOpt),
        ("transaction_id", TxnOpt),
        ("notification_id", NtfOpt),
    )
]


def with_filter_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command(filters, *, own options)` as a command that takes the filter options too.

    typer reads a command's options from its signature, so the one returned declares the
    filter options followed by `command`'s own, and builds the filter from them when called.
    """
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    ]
    signature = inspect.Signature([*_FILTER_PARAMS, *own], return_annotation=None)

    @functools.wraps(command)
    def wrapper(**options: Any) -> None:
        filters = build_filters(**{p.name: options.pop(p.name) for p in _FILTER_PARAMS})
        command(filters, **options)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    # Evaluated annotations, not `command`'s (strings under `from __future__ import annotations`).
    wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return wrapper
