"""`notifyctl secrets reencrypt`: rewrite stored credentials under the current secret key."""

from __future__ import annotations

import asyncio

import typer
from pymongo.errors import PyMongoError

from notifyctl.output import err, out, print_json
from notifyctl.session import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from shared.crypto import CredentialCipher
from shared.db.client import connect_database
from shared.db.reencrypt import ReencryptReport, reencrypt_provider_credentials
from shared.settings import Settings

EXIT_UNREADABLE = 1


def reencrypt_command(
    json_output: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Re-encrypt provider credentials with NOTIFY_SECRET_KEY.

    Run it after deploying a new NOTIFY_SECRET_KEY with the old one in
    NOTIFY_PREVIOUS_SECRET_KEYS; when it reports 0 unreadable and 0 changed meanwhile, the
    old key can be removed. Exit code 1 when some credentials no key can read.
    """
    try:
        settings = Settings()
    except ValueError as exc:
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None

    async def main() -> ReencryptReport:
        db = connect_database(
            url=settings.mongodb_url,
            name=settings.database_name,
            timeout_ms=settings.mongo_timeout_ms,
        )
        try:
            cipher = CredentialCipher(settings.secret_key, previous=settings.previous_secrets)
            return await reencrypt_provider_credentials(db.providers, cipher)
        finally:
            await db.close()

    try:
        report = asyncio.run(main())
    except PyMongoError as exc:
        err.print(f"[red]unavailable:[/red] MongoDB: {type(exc).__name__}: {str(exc)[:200]}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    if json_output:
        print_json(
            {
                "rewritten": report.rewritten,
                "alreadyCurrent": report.current,
                "changedMeanwhile": report.changed_meanwhile,
                "unreadable": report.unreadable,
            }
        )
    else:
        out.print(
            f"provider credentials: {report.rewritten} re-encrypted, {report.current} already "
            f"under the current key, {report.changed_meanwhile} changed meanwhile (run again), "
            f"{len(report.unreadable)} unreadable"
        )
        for name in report.unreadable:
            err.print(f"[yellow]unreadable with every configured key:[/yellow] {name}")
    raise typer.Exit(EXIT_UNREADABLE if report.unreadable else EXIT_OK)
