"""The command tree: `notifyctl dlq …` and `notifyctl secrets …` (entry point: `app`)."""

from __future__ import annotations

import typer

from notifyctl.changing import purge_command, replay_command
from notifyctl.reading import history_command, list_command, show_command
from notifyctl.secrets import reencrypt_command

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Operator commands of the notify service."
)
dlq = typer.Typer(
    no_args_is_help=True,
    help="Dead-letter queues: list, show, replay and purge failed notifications.",
)
app.add_typer(dlq, name="dlq")
secrets = typer.Typer(no_args_is_help=True, help="Secret key rotation.")
app.add_typer(secrets, name="secrets")
secrets.command("reencrypt")(reencrypt_command)

dlq.command("list")(list_command)
dlq.command("show")(show_command)
dlq.command("replay")(replay_command)
dlq.command("purge")(purge_command)
dlq.command("history")(history_command)
