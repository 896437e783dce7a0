"""`vigila hotlist list|create|import|match`: hotlists from the server's console.

Register it in vigila/cli.py with ``app.add_typer(hotlist_app, name="hotlist")``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from vigila.access import Principal, Purpose
from vigila.core import Settings, VigilaError, iso
from vigila.hotlists.importer import FileFormat
from vigila.hotlists.models import HotlistIn, HotlistKind, ImportMode, LookalikePolicy
from vigila.hotlists.service import (
    create_hotlist,
    import_entries,
    list_hotlists,
    lookup,
    rejected,
)
from vigila.store import Database, upgrade

hotlist_app = typer.Typer(help="Hotlists: wanted plates, their import, matching a plate.",
                          no_args_is_help=True)


def _console() -> Principal:
    return Principal.console(getpass.getuser())


@contextmanager
def _database() -> Iterator[Database]:
    """The installation's database, migrated; domain errors become exit status 2."""
    db = Database(Settings.from_env().database_url)
    try:
        upgrade(db)
        yield db
    except VigilaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for e in exc.errors[:50]:
            where = f"row {e.row}, " if e.row is not None else ""
            typer.echo(f"  {where}{e.field}: {e.message}", err=True)
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        typer.echo("error: invalid input", err=True)
        for err in exc.errors():
            typer.echo(f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()


@hotlist_app.command("list")
def list_command() -> None:
    """The hotlists, one a line."""
    with _database() as db, db.read() as conn:
        for h in list_hotlists(conn, _console()):
            state = "active" if h.active else "inactive"
            typer.echo(f"{h.id}\t{h.kind.value}\t{h.agency_id}\tpriority={h.priority}\t"
                       f"{h.policy.value}\t{state}\tentries={h.entry_count}\t{h.name}")


@hotlist_app.command("create")
def create_command(
    hotlist_id: Annotated[str, typer.Argument(help="a slug: lower-case, digits, dashes")],
    name: Annotated[str, typer.Option(help="what the control room sees")],
    kind: Annotated[HotlistKind, typer.Option(help="what the list holds")],
    agency: Annotated[str, typer.Option(help="the owner agency's id")],
    priority: Annotated[int, typer.Option(help="for entries that name none, 0-100")] = 50,
    policy: Annotated[LookalikePolicy, typer.Option(
        help="exact, or also one OCR look-alike away")] = LookalikePolicy.EXACT,
) -> None:
    """Create a hotlist."""
    with _database() as db, db.write() as conn:
        h = create_hotlist(conn, _console(), HotlistIn(
            id=hotlist_id, name=name, kind=kind, agency_id=agency, priority=priority,
            policy=policy))
    typer.echo(f"created {h.id} ({h.kind.value}, {h.policy.value})")


@hotlist_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with a header, or TXT: a plate a line")],
    hotlist_id: Annotated[str, typer.Option("--list", help="the hotlist's id")],
    replace: Annotated[bool, typer.Option(
        "--replace", help="the file becomes the whole list (default: merge)")] = False,
    good_rows: Annotated[bool, typer.Option(
        "--good-rows", help="import the valid rows, report the rest")] = False,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="default: csv for *.csv, txt otherwise")] = None,
) -> None:
    """Import entries from a file, all or nothing unless --good-rows."""
    chosen = fmt or (FileFormat.CSV if file.suffix.lower() == ".csv" else FileFormat.TXT)
    mode = ImportMode.REPLACE if replace else ImportMode.MERGE
    raw = file.read_bytes()
    with _database() as db:
        with db.write() as conn:
            report = import_entries(conn, _console(), hotlist_id, raw, fmt=chosen, mode=mode,
                                    good_rows=good_rows, source=f"cli:{file.name}")
        if not report.committed:
            raise rejected(report, retry="--good-rows")
    typer.echo(f"{hotlist_id}: {report.rows} rows, {report.added} added, {report.updated} "
               f"updated, {report.removed} removed, {report.rejected} rejected "
               f"in {report.seconds:.1f} s")
    for e in report.errors[:50]:
        typer.echo(f"  row {e.get('row')}, {e['field']}: {e['message']}", err=True)


@hotlist_app.command("match")
def match_command(
    plate: Annotated[str, typer.Argument(help="the plate as read or typed")],
    purpose: Annotated[str, typer.Option(help="why the plate is looked up (audited)")],
    reference: Annotated[str, typer.Option(help="the case or request reference")],
) -> None:
    """The hotlist entries a read of PLATE would hit now; exit status 1 if none."""
    with _database() as db:
        why = Purpose.parse(purpose, reference)
        with db.write() as conn:
            hits = lookup(conn, _console(), why, plate)
    for hit in hits:
        how = "exact" if hit.distance == 0 else "look-alike"
        until = f"\tuntil {iso(hit.expires_at)}" if hit.expires_at else ""
        typer.echo(f"{hit.hotlist_id}\t{hit.kind.value}\t{hit.plate}\t{how}\t"
                   f"priority={hit.priority}\t{hit.reason or ''}{until}")
    if not hits:
        typer.echo("no hit")
        raise typer.Exit(1)
