"""`vigila reads purge|forward-status|forward-run`: minimisation and forwarding by hand.

Register it in vigila/cli.py with ``app.add_typer(reads_app, name="reads")``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from vigila.core import Settings, VigilaError, iso
from vigila.reads import forwarding, minimise
from vigila.store import Database, upgrade

reads_app = typer.Typer(help="Plate reads: minimisation purge, forwarding upstream.",
                        no_args_is_help=True)


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    try:
        upgrade(db)
        yield db
    except VigilaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()


@reads_app.command("purge")
def purge_command() -> None:
    """Delete the reads that have outlived their purpose now (audited)."""
    settings = Settings.from_env()
    with _database(settings) as db:
        report = minimise.purge(db, settings)
    for category in minimise.CATEGORIES:
        devices: Counter[str] = report.devices.get(category, Counter())
        where = ", ".join(f"{d}={n}" for d, n in sorted(devices.items()))
        typer.echo(f"{category}\t{report.deleted[category]}" + (f"\t{where}" if where else ""))
    typer.echo(f"alarms {report.alarms}, images {report.images} "
               f"(already gone {report.missing_images}), audit entries {report.audit_entries}")


@reads_app.command("forward-status")
def forward_status_command() -> None:
    """The upstream queue: rows per state, the oldest pending."""
    settings = Settings.from_env()
    with _database(settings) as db, db.read() as conn:
        s = forwarding.status(conn)
    state = f"on ({settings.forward_format})" if settings.forward_url else "off"
    oldest = (f"{iso(s.oldest_pending_at)} ({s.oldest_pending_seconds:.0f} s ago)"
              if s.oldest_pending_at is not None and s.oldest_pending_seconds is not None
              else "-")
    typer.echo(f"forwarding {state}\npending {s.pending} (due {s.due})\nsent {s.sent}\n"
               f"dead {s.dead}\noldest pending {oldest}")


@reads_app.command("forward-run")
def forward_run_command() -> None:
    """Send what is due now, once (the service does this every second)."""
    settings = Settings.from_env()
    if not settings.forward_url:
        typer.echo("error: forwarding is off: set VIGILA_FORWARD_URL", err=True)
        raise typer.Exit(2)
    with _database(settings) as db:
        try:
            report = forwarding.Forwarder(db, settings).run_once()
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    typer.echo(f"requests {report.requests}, sent {report.sent}, to retry {report.retried}, "
               f"dead {report.dead}")
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    if report.retried or report.dead:
        raise typer.Exit(1)
