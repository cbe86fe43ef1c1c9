"""The progress bar of a long replay or purge, one line per DLQ, on stderr."""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from notifyctl.output import err
from shared.dlq.results import Progress as OpProgress


class ProgressBar:
    """A rich progress bar fed by the operation's progress reports (`on_progress`)."""

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
