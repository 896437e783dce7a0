"""The command line: `vigila --help`."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from vigila import __version__, recording, registry
from vigila.access import Principal, Purpose, Role, audit, hasher, users
from vigila.core import Settings, VigilaError, parse_instant
from vigila.evidence.cli import evidence_app
from vigila.hotlists.cli import hotlist_app
from vigila.reads.cli import reads_app
from vigila.recording.cli import record_command
from vigila.registry.service import field_errors
from vigila.sim.cli import sim_app
from vigila.store import Database, current_revision, head_revision, upgrade
from vigila.vision.cli import anpr_app, plate_reading

app = typer.Typer(help="Vigila: videosorveglianza urbana e lettura targhe.",
                  no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies (forces and authorities).", no_args_is_help=True)
zone_app = typer.Typer(help="Zones (GeoJSON polygons).", no_args_is_help=True)
device_app = typer.Typer(help="Devices: cameras, plate readers, recording servers.",
                         no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
plan_app = typer.Typer(help="Planning: capacity, camera coverage, plate-reader gates.",
                       no_args_is_help=True)
recording_app = typer.Typer(help="The recording service: run it, camera health, purge.",
                            no_args_is_help=True)
hold_app = typer.Typer(help="Legal holds: video kept for a judicial or police request.",
                       no_args_is_help=True)
retention_app = typer.Typer(help="How long each camera's video is kept.", no_args_is_help=True)
for sub, name in ((db_app, "db"), (audit_app, "audit"), (agency_app, "agency"),
                  (zone_app, "zone"), (device_app, "device"), (user_app, "user"),
                  (plan_app, "plan"), (sim_app, "sim"), (recording_app, "recording"),
                  (hold_app, "hold"), (retention_app, "retention")):
    app.add_typer(sub, name=name)
app.command("record")(record_command)
app.add_typer(evidence_app, name="evidence")
app.add_typer(hotlist_app, name="hotlist")
app.add_typer(reads_app, name="reads")
app.add_typer(anpr_app, name="anpr")

T = TypeVar("T")


def _console() -> Principal:
    return Principal.console(getpass.getuser())


def _open() -> tuple[Settings, Database]:
    settings = Settings.from_env()
    db = Database(settings.database_url)
    upgrade(db)
    return settings, db


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors become a message and exit status 2, not a traceback."""
    try:
        yield
    except VigilaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for e in exc.errors[:50]:
            where = f"row {e.row}, " if e.row is not None else ""
            typer.echo(f"  {where}{e.field}: {e.message}", err=True)
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        typer.echo("error: invalid input", err=True)
        for e in field_errors(exc):
            typer.echo(f"  {e.field}: {e.message}", err=True)
        raise typer.Exit(2) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"error: cannot read the input: {exc}", err=True)
        raise typer.Exit(2) from exc


def _pairs(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE arguments; an empty value means none."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: expected KEY=VALUE, got {item!r}", err=True)
            raise typer.Exit(2)
        out[key.strip()] = value if value != "" else None
    return out


def _print(obj: BaseModel | dict[str, Any] | list[Any]) -> None:
    if isinstance(obj, BaseModel):
        typer.echo(obj.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _run(action: Callable[[Settings, Database, Principal], T]) -> T:
    settings, db = _open()
    try:
        with _errors():
            return action(settings, db, _console())
    finally:
        db.dispose()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
          record: Annotated[bool, typer.Option(
              "--record/--no-record", help="also run the recording service in this process "
              "(one worker); see `vigila recording run` for a recording server")] = False) -> None:
    """Serve the HTTP API (migrations are applied first)."""
    import uvicorn

    if record and workers != 1:
        raise typer.BadParameter("--record runs one recorder: use one worker",
                                 param_hint="--workers")
    settings, db = _open()
    db.dispose()
    os.environ["VIGILA_RECORD"] = "1" if record else "0"
    typer.echo(f"Vigila {__version__} on http://{host}:{port}/api/docs ({settings.database_url})")
    uvicorn.run("vigila.api.asgi:app", host=host, port=port, workers=workers,
                proxy_headers=False, log_level="info",
                timeout_graceful_shutdown=5)  # open alarm streams never end by themselves


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000,
         serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
         cameras: Annotated[int, typer.Option(
             min=0, max=300, help="sample-city cameras to stream over RTSP (0: none)")] = 8,
         rtsp_port: int = 8554,
         reads_per_second: Annotated[float, typer.Option(
             min=0, max=1000, help="simulated plate reads per second posted to the API by the "
             "sample city's readers, some of them hotlist hits (0: none)")] = 2.0) -> None:
    """Load the illustrative sample city (once), stream some of its cameras, serve the API,
    and post simulated plate reads to it (a demo hotlist makes some of them alarms)."""
    import signal
    from contextlib import ExitStack
    from types import FrameType

    from vigila.sim.cameras import CameraSimulator, SimulatorError, camera_ids
    from vigila.sim.demo import (
        HIT_EVERY,
        banner,
        demo_reads,
        load_sample_city,
        quiet_demo_logging,
    )
    from vigila.sim.reads import ReadSimulator

    settings, db = _open()
    with _errors():
        creds = load_sample_city(db, hasher(settings), settings.data_dir, _console())
        reads = demo_reads(db, creds) if reads_per_second > 0 else None
    db.dispose()
    typer.echo(banner(f"http://{host}:{port}", creds, settings.database_url, reads,
                      reads_per_second, HIT_EVERY))
    if not serve_api:
        return

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # uvicorn re-raises the signal once it has stopped: unwind

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with ExitStack() as stack:
            if cameras:
                try:
                    sim = stack.enter_context(CameraSimulator(
                        camera_ids(cameras), port=rtsp_port, cache_dir=settings.data_dir / "sim"))
                    typer.echo(f"  RTSP cameras ({cameras}): {sim.url(camera_ids(1)[0])} ... "
                               f"{sim.url(camera_ids(cameras)[-1])}")
                    # Only the streamed cameras: the rest of the city would just retry forever.
                    service = recording.RecordingService(
                        Database(settings.database_url), settings, options=recording.ServiceOptions(
                            streams=sim.urls()))
                    stack.enter_context(service)
                    typer.echo(f"  Recording them into:  {settings.recordings_root}\n")
                except SimulatorError as exc:  # the API is still worth serving without video
                    typer.echo(f"  simulated cameras not started: {exc.detail}\n", err=True)
            if reads is not None:
                if not reads.readers or reads.password is None:
                    typer.echo("  simulated plate reads not started: no plate reader in service or "
                               f"no password for {reads.username} in demo-credentials.json\n",
                               err=True)
                else:
                    # The API is served below, in this thread: the simulator waits for
                    # /api/health in its own, then logs in as the reader account and posts.
                    local = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" \
                        else host
                    api = f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"
                    quiet_demo_logging()
                    stack.enter_context(ReadSimulator(
                        api, None, reads.readers, reads_per_second, reads.hotlist_plates,
                        HIT_EVERY, credentials=(reads.username, reads.password),
                        report_every=30.0))
            serve(host=host, port=port, workers=1, record=False)
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: the simulators and the recorder have been stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    _settings, db = _open()
    typer.echo(f"database at revision {current_revision(db)} (head {head_revision()})")
    db.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision without changing anything."""
    settings = Settings.from_env()
    db = Database(settings.database_url)
    typer.echo(f"{current_revision(db)} (head {head_revision()})")
    db.dispose()


@audit_app.command("verify")
def audit_verify(
    file: Annotated[Path | None, typer.Option(help="verify a JSON Lines export instead")] = None,
    expect_head: Annotated[str | None, typer.Option(
        help="SEQ:HASH recorded earlier with `vigila audit head`")] = None,
) -> None:
    """Check the hash chain; exit 1 and name the first broken entry if it was tampered with."""
    if file is not None:
        try:
            with file.open(encoding="utf-8") as fh:
                verdict = audit.verify_jsonl(fh)
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"error: cannot read {file}: {exc}", err=True)
            raise typer.Exit(2) from exc
    else:
        expect = None
        if expect_head:
            seq, _, digest = expect_head.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                typer.echo("error: --expect-head is SEQ:HASH", err=True)
                raise typer.Exit(2)
            expect = (int(seq), digest)

        def check(_: Settings, db: Database, who: Principal) -> audit.Verdict:
            with db.write() as conn:
                v = audit.verify(conn, expect)
                audit.record(conn, who, "audit.verify", "audit",
                             outcome="ok" if v.ok else "broken",
                             detail={"entries": v.entries, "broken_seq": v.broken_seq})
            return v

        verdict = _run(check)
    if verdict.ok:
        typer.echo(f"audit chain intact: {verdict.entries} entries, head {verdict.head_seq}:"
                   f"{verdict.head_hash}")
        if verdict.gaps:
            typer.echo(f"  a filtered export: {verdict.gaps} gaps, not checkable from the file")
        return
    typer.echo(f"AUDIT CHAIN BROKEN at entry {verdict.broken_seq}: {verdict.reason} "
               f"({verdict.entries} entries verified before it)", err=True)
    raise typer.Exit(1)


@audit_app.command("head")
def audit_head() -> None:
    """Print SEQ:HASH of the newest entry, to record outside the system."""
    def head(_: Settings, db: Database, __: Principal) -> tuple[int, str]:
        with db.read() as conn:
            return audit.head(conn)

    seq, digest = _run(head)
    typer.echo(f"{seq}:{digest}")


@audit_app.command("export")
def audit_export(
    purpose: Annotated[str, typer.Option(help="why the log is exported")],
    reference: Annotated[str, typer.Option(help="case or request reference")],
    out: Annotated[Path, typer.Option(help="JSON Lines file to write")],
    recipient: Annotated[str | None, typer.Option(help="to whom it goes")] = None,
) -> None:
    """Export the log as JSON Lines (hashes included); the export itself is logged."""
    def export(_: Settings, db: Database, who: Principal) -> int:
        why = Purpose.parse(purpose, reference)
        q = audit.AuditQuery()
        with db.write() as conn:
            audit.record(conn, who, "audit.export", "audit", purpose=why, recipient=recipient)
        count = 0
        tmp = out.with_suffix(out.suffix + ".part")
        with db.read() as conn, tmp.open("w", encoding="utf-8") as fh:
            for line in audit.export_jsonl(conn, q):
                fh.write(line)
                count += 1
        tmp.replace(out)
        return count

    typer.echo(f"{_run(export)} entries written to {out}")


@agency_app.command("list")
def agency_list() -> None:
    """List agencies."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            for a in registry.list_agencies(conn, who):
                typer.echo(f"{a.id:<24} {a.kind.value:<22} {a.name}")
    _run(run)


@agency_app.command("create")
def agency_create(agency_id: str, name: str, kind: registry.AgencyKind) -> None:
    """Register an agency."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.write() as conn:
            _print(registry.create_agency(conn, who, registry.AgencyIn(
                id=agency_id, name=name, kind=kind)))
    _run(run)


@agency_app.command("update")
def agency_update(agency_id: str, name: str | None = None,
                  kind: registry.AgencyKind | None = None) -> None:
    """Rename an agency or change its kind."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        patch = registry.AgencyPatch.model_validate(
            {k: v for k, v in (("name", name), ("kind", kind)) if v is not None})
        with db.write() as conn:
            _print(registry.update_agency(conn, who, agency_id, patch))
    _run(run)


@zone_app.command("update")
def zone_update(
    zone_id: str, name: str | None = None, kind: registry.ZoneKind | None = None,
    geometry: Annotated[Path | None, typer.Option(
        help="a file with a GeoJSON Polygon/MultiPolygon, or a Feature holding one")] = None,
) -> None:
    """Rename a zone, change its kind or redraw it."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        fields: dict[str, Any] = {k: v for k, v in (("name", name), ("kind", kind))
                                  if v is not None}
        if geometry is not None:
            doc = json.loads(geometry.read_bytes().decode("utf-8-sig"))
            fields["geometry"] = doc.get("geometry", doc) if doc.get("type") == "Feature" else doc
        with db.write() as conn:
            patch = registry.ZonePatch.model_validate(fields)
            zone = registry.update_zone(conn, who, zone_id, patch)
        typer.echo(f"{zone.id} updated")
    _run(run)


@zone_app.command("delete")
def zone_delete(zone_id: str) -> None:
    """Delete a zone that no device and no user grant refers to."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.write() as conn:
            registry.delete_zone(conn, who, zone_id)
        typer.echo(f"{zone_id} deleted")
    _run(run)


@zone_app.command("list")
def zone_list() -> None:
    """List zones."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            for z in registry.list_zones(conn, who):
                typer.echo(f"{z.id:<28} {z.kind.value:<10} {z.name}")
    _run(run)


@zone_app.command("import")
def zone_import(file: Path) -> None:
    """Create zones from a GeoJSON FeatureCollection (properties: id, name, kind); all or none."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        doc = json.loads(file.read_bytes().decode("utf-8-sig"))
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise VigilaError("expected a GeoJSON FeatureCollection")
        with db.write() as conn:
            for n, f in enumerate(features, start=1):
                try:
                    data = registry.ZoneIn.model_validate(
                        {**(f.get("properties") or {}), "geometry": f.get("geometry")})
                    registry.create_zone(conn, who, data)
                except (VigilaError, ValidationError) as exc:
                    raise VigilaError(f"feature {n}: {exc}; nothing imported") from exc
        typer.echo(f"{len(features)} zones imported")
    _run(run)


@zone_app.command("export")
def zone_export() -> None:
    """Print zones as a GeoJSON FeatureCollection."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            _print(registry.zones_geojson(registry.list_zones(conn, who)))
    _run(run)


@device_app.command("list")
def device_list(
    kind: registry.DeviceKind | None = None,
    zone: Annotated[str | None, typer.Option(help="zone id")] = None,
    status: registry.DeviceStatus | None = None,
    include_retired: bool = False,
) -> None:
    """List devices."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        flt = registry.DeviceFilter(kind=kind, zone_id=zone, status=status,
                                    include_retired=include_retired)
        with db.read() as conn:
            for d in registry.iter_devices(conn, who, flt):
                typer.echo(f"{d.id:<12} {d.kind.value:<17} {d.status.value:<12} "
                           f"{d.zone_id or '-':<24} {d.name}")
    _run(run)


@device_app.command("get")
def device_get(device_id: str) -> None:
    """Show one device as JSON."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            _print(registry.get_device(conn, who, device_id))
    _run(run)


@device_app.command("create")
def device_create(fields: Annotated[list[str], typer.Argument(
        help="KEY=VALUE, e.g. id=CAM-1 kind=camera name='Via Roma' lat=43.88 lon=11.09 "
             "agency_id=pl-prato")]) -> None:
    """Register a device."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        data = registry.DeviceIn.model_validate(_pairs(fields))
        with db.write() as conn:
            _print(registry.create_device(conn, who, data))
    _run(run)


@device_app.command("update")
def device_update(device_id: str, fields: Annotated[list[str], typer.Argument(
        help="KEY=VALUE to change; KEY= clears it")]) -> None:
    """Change a device's fields."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        patch = registry.DevicePatch.model_validate(_pairs(fields))
        with db.write() as conn:
            _print(registry.update_device(conn, who, device_id, patch))
    _run(run)


@device_app.command("retire")
def device_retire(device_id: str,
                  reason: Annotated[str | None, typer.Option(help="why")] = None) -> None:
    """Retire a device (kept for history, no longer active)."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.write() as conn:
            _print(registry.retire_device(conn, who, device_id, reason))
    _run(run)


@device_app.command("import")
def device_import(
    file: Path,
    good_rows: Annotated[bool, typer.Option(
        help="import the valid rows and report the rest (default: all or nothing)")] = False,
) -> None:
    """Import devices from CSV or GeoJSON (by extension); prints a per-row report."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        raw = file.read_bytes()
        is_geo = file.suffix.lower() in (".geojson", ".json")
        rows = registry.parse_geojson(raw) if is_geo else registry.parse_csv(raw)
        with db.write() as conn:
            report = registry.import_devices(conn, who, rows, good_rows=good_rows,
                                             source=file.name)
        for e in report.errors:
            typer.echo(f"  row {e.get('row')}, {e['field']}: {e['message']}", err=True)
        typer.echo(f"{report.rows} rows: {report.imported} imported, {report.rejected} rejected"
                   + ("" if report.committed else " — nothing imported (use --good-rows)"))
        if not report.committed:
            raise typer.Exit(2)
    _run(run)


@device_app.command("export")
def device_export(fmt: Annotated[str, typer.Option("--format", help="csv or geojson")] = "csv",
                  out: Annotated[Path | None, typer.Option(help="file (default stdout)")] = None,
                  include_retired: bool = False) -> None:
    """Export devices as CSV (re-importable) or GeoJSON."""
    if fmt not in ("csv", "geojson"):
        typer.echo("error: --format is csv or geojson", err=True)
        raise typer.Exit(2)

    def run(_: Settings, db: Database, who: Principal) -> None:
        flt = registry.DeviceFilter(include_retired=include_retired)
        with db.read() as conn:
            items = list(registry.iter_devices(conn, who, flt))
        text = (registry.devices_csv(items) if fmt == "csv" else
                json.dumps(registry.devices_geojson(items), ensure_ascii=False, indent=1))
        if out:
            out.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    _run(run)


@user_app.command("create")
def user_create(
    username: str,
    agency: Annotated[str, typer.Option(help="agency id")],
    role: Annotated[list[Role], typer.Option(help="repeat for several roles")],
    full_name: Annotated[str | None, typer.Option(help="defaults to the username")] = None,
    zone: Annotated[list[str] | None, typer.Option(help="zone id granted; repeat")] = None,
    all_zones: bool = False,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create a user (the password is asked for, or read from stdin)."""
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))

    def run(settings: Settings, db: Database, who: Principal) -> None:
        data = users.UserCreate(username=username, full_name=full_name or username,
                                agency_id=agency, roles=role, all_zones=all_zones,
                                zone_ids=zone or [], password=password)
        with db.write() as conn:
            _print(users.create(conn, who, data, hasher(settings)).model_dump(mode="json"))
    _run(run)


@user_app.command("list")
def user_list() -> None:
    """List users."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        cursor = None
        with db.read() as conn:
            while True:
                page = users.listing(conn, who, cursor, 500)
                for u in page.items:
                    scope = "all zones" if u.all_zones else ",".join(u.zone_ids) or "-"
                    state = "active" if u.active else "disabled"
                    typer.echo(f"{u.id:>4} {u.username:<20} {state:<9} {u.agency_id:<20} "
                               f"{','.join(u.roles):<24} {scope}")
                if not page.next_cursor:
                    break
                cursor = page.next_cursor
    _run(run)


@user_app.command("disable")
def user_disable(user_id: int) -> None:
    """Disable a user and end their sessions."""
    def run(settings: Settings, db: Database, who: Principal) -> None:
        with db.write() as conn:
            users.update(conn, who, user_id, users.UserPatch(active=False), hasher(settings))
        typer.echo(f"user {user_id} disabled")
    _run(run)


@plan_app.command("capacity")
def plan_capacity(
    whatif: Annotated[Path | None, typer.Argument(
        help="what-if file (YAML or JSON); without it, the devices in the registry")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Ingest, storage, disks, servers and cost; whether the servers suffice, with margins."""
    from vigila.planning import capacity

    def run(_: Settings, db: Database, __: Principal) -> capacity.CapacityPlan:
        if whatif is not None:
            return capacity.plan_capacity(capacity.load_whatif(whatif))
        with db.read() as conn:
            return capacity.plan_capacity(capacity.from_registry(conn))

    result = _run(run)
    typer.echo(result.model_dump_json(indent=2) if as_json else capacity.render_table(result))


def _solve_and_draw(planner: Any, problem: Path, out: Path, name: str, as_json: bool) -> None:
    """Coverage and gates share one shape: load, solve, write GeoJSON and a map, report."""
    with _errors():
        prob = planner.load_problem(problem)
        result = planner.solve(prob)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.geojson").write_text(json.dumps(planner.to_geojson(result), indent=1))
        planner.render_png(prob, result, out / f"{name}.png")
    typer.echo(result.model_dump_json(indent=2) if as_json else planner.summary(result))
    if not as_json:
        typer.echo(f"written: {out / name}.geojson, {out / name}.png")


@plan_app.command("coverage")
def plan_coverage(
    problem: Annotated[Path, typer.Argument(help="problem file (JSON or YAML): candidates, "
                                            "targets, models, buildings, existing, budget")],
    out: Annotated[Path, typer.Option(help="folder for coverage.geojson and coverage.png")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Choose camera sites and headings: exact (CP-SAT) beside a greedy baseline."""
    from vigila.planning import coverage

    _solve_and_draw(coverage, problem, out, "coverage", as_json)


@plan_app.command("gates")
def plan_gates(
    problem: Annotated[Path, typer.Argument(help="problem file: roads, boundary, reach, count")],
    out: Annotated[Path, typer.Option(help="folder for gates.geojson and gates.png")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Place plate readers so every road entering the city is covered."""
    from vigila.planning import gates

    _solve_and_draw(gates, problem, out, "gates", as_json)


# --- recording service, holds, retention ---------------------------------------------


def _instant(text: str, name: str) -> Any:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from exc


@recording_app.command("run")
def recording_run(
    server: Annotated[str | None, typer.Option(
        help="record the cameras assigned to this recording server "
             "(default: VIGILA_RECORDER_SERVER, else every camera)")] = None,
    segment_seconds: Annotated[float, typer.Option(min=0.5, max=3600)] = 10.0,
    duration: Annotated[float | None, typer.Option(
        min=0, help="stop after this many seconds (default: until Ctrl-C)")] = None,
    status_every: Annotated[float, typer.Option(min=0.5)] = 30.0,
    read_plates: Annotated[bool, typer.Option(
        "--read-plates", help="also read plates on the cameras registered as camera_anpr "
        "with anpr_vendor 'vigila' (their sub-stream where there is one), posting one read "
        "per vehicle pass to --api as that camera")] = False,
    api: Annotated[str, typer.Option(help="the Vigila API, for --read-plates")
                   ] = "http://127.0.0.1:8000",
    reader_user: Annotated[str, typer.Option(help="a reader account, for --read-plates")
                           ] = "lettore.varchi",
    password_env: Annotated[str, typer.Option(
        help="the environment variable holding its password")] = "VIGILA_READER_PASSWORD",
    plate_fps: Annotated[float, typer.Option(min=0.2, max=25)] = 4.0,
) -> None:
    """Record the registry's active cameras into the recording root, with retention."""
    settings, db = _open()
    reading = (plate_reading(api, reader_user, password_env, plate_fps, None, 960)
               if read_plates else None)
    service = recording.RecordingService(
        db, settings, server_id=server, options=recording.ServiceOptions(
            segment_seconds=segment_seconds, plate_reading=reading))
    deadline = None if duration is None else time.monotonic() + duration
    try:
        with _errors(), service:
            rescan = service.last_rescan
            typer.echo(f"recording {len(service.cameras)} camera(s) into "
                       f"{settings.recordings_root}" + (
                           f" (rescan: {rescan.indexed} indexed, {rescan.quarantined} "
                           "quarantined)" if rescan else ""), err=True)
            next_status = time.monotonic() + status_every
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
                if time.monotonic() >= next_status:
                    for status in service.status().values():
                        typer.echo(f"{status['camera']}\t{status['state']}\t"
                                   f"segments={status['segments']}\tgaps={status['gaps']}")
                    next_status = time.monotonic() + status_every
    except KeyboardInterrupt:
        typer.echo("stopping: closing the open segments", err=True)
    finally:
        db.dispose()


@recording_app.command("health")
def recording_health(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each camera's health as its recorder last reported it."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            rows = recording.list_health(conn, who)
        if as_json:
            _print([row.model_dump(mode="json") for row in rows])
            return
        for row in rows:
            state = row.state + (" (stale)" if row.stale else "")
            fps = f"{row.fps:g} fps" if row.fps is not None else "-"
            rate = f"{row.bitrate_bps / 1e6:.2f} Mbit/s" if row.bitrate_bps else "-"
            last = row.last_frame_at.isoformat() if row.last_frame_at else "-"
            typer.echo(f"{row.camera_id:<14} {state:<16} {fps:<9} {rate:<13} {last}"
                       + (f"  {row.last_error}" if row.last_error else ""))
    _run(run)


@recording_app.command("purge")
def recording_purge() -> None:
    """Delete now the video past each camera's retention that no legal hold keeps."""
    def run(settings: Settings, db: Database, _: Principal) -> None:
        report = recording.purge_expired(db, settings.recordings_root,
                                         default_days=settings.retention_days)
        typer.echo(f"deleted {report.total} segments ({report.freed_bytes} bytes); "
                   f"{report.held_kept} expired segments kept under legal hold")
    _run(run)


@recording_app.command("rescan")
def recording_rescan() -> None:
    """Index segments the index misses; quarantine unreadable files."""
    def run(settings: Settings, db: Database, _: Principal) -> None:
        report = recording.rescan(db, settings.recordings_root)
        typer.echo(f"indexed {report.indexed}, already known {report.already_known}, "
                   f"quarantined {report.quarantined}, ignored {report.ignored}")
        for path in report.quarantined_paths:
            typer.echo(f"  quarantined: {path}")
    _run(run)


@hold_app.command("create")
def hold_create(
    authority: Annotated[str, typer.Option(help="who asked, e.g. 'Procura di Prato'")],
    reference: Annotated[str, typer.Option(help="the request's reference")],
    request_date: Annotated[str, typer.Option("--date", help="the request's date, YYYY-MM-DD")],
    camera: Annotated[list[str], typer.Option(help="camera id; repeat")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 with offset")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 with offset")],
    notes: str | None = None,
) -> None:
    """Put cameras' video in a time window under a legal hold."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        data = recording.HoldIn.model_validate({
            "authority": authority, "reference": reference, "request_date": request_date,
            "cameras": camera, "start": _instant(start, "--from"),
            "end": _instant(end, "--to"), "notes": notes})
        with db.write() as conn:
            _print(recording.create_hold(conn, who, data).model_dump(mode="json"))
    _run(run)


@hold_app.command("list")
def hold_list(active: Annotated[bool | None, typer.Option("--active/--released")] = None) -> None:
    """List legal holds."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            holds = recording.list_holds(conn, who, active=active)
        for h in holds:
            state = "active" if h.active else f"released {h.released_at:%Y-%m-%d}"
            typer.echo(f"{h.id:>4} {state:<20} {h.reference:<24} {h.authority:<30} "
                       f"{h.start:%Y-%m-%d %H:%M}..{h.end:%Y-%m-%d %H:%M} "
                       f"{','.join(h.cameras)} ({h.segments} segments)")
    _run(run)


@hold_app.command("release")
def hold_release(hold_id: int,
                 reason: Annotated[str, typer.Option(help="why it is released")]) -> None:
    """Release a legal hold: its video follows retention again."""
    def run(_: Settings, db: Database, who: Principal) -> None:
        with db.write() as conn:
            hold = recording.release_hold(conn, who, hold_id,
                                          recording.HoldRelease(reason=reason))
        typer.echo(f"hold {hold.id} released")
    _run(run)


@retention_app.command("list")
def retention_list() -> None:
    """Each camera's retention in days."""
    def run(settings: Settings, db: Database, who: Principal) -> None:
        with db.read() as conn:
            for r in recording.list_retention(conn, who, settings.retention_days):
                typer.echo(f"{r.camera_id:<14} {r.days:>4} days"
                           + ("  (default)" if r.default else f"  {r.reason or ''}"))
    _run(run)


@retention_app.command("set")
def retention_set(camera: str, days: int,
                  reason: Annotated[str | None, typer.Option(
                      help="legal basis; required past 7 days")] = None) -> None:
    """Set a camera's retention."""
    def run(settings: Settings, db: Database, who: Principal) -> None:
        data = recording.RetentionIn(days=days, reason=reason)
        with db.write() as conn:
            r = recording.set_retention(conn, who, camera, data, settings.retention_days)
        typer.echo(f"{r.camera_id}: {r.days} days")
    _run(run)


def main() -> None:
    app()
