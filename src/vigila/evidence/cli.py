"""`vigila evidence verify|key|export`: evidence packages from the command line.

`verify` needs no database and no installation: it is what the recipient runs. Its
exit status is 0 when every check passes, 1 when any fails, 2 when the input cannot
be used (no such package, not a zip, not an Ed25519 public key).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from vigila import __version__
from vigila.access import Principal, Purpose
from vigila.core import InvalidInput, Settings, parse_instant
from vigila.evidence import (
    CameraEvidence,
    EvidencePackage,
    VerifyReport,
    export_evidence,
    installation_key,
    on_screen,
    packages_dir,
    verify_package,
)
from vigila.store import Database

evidence_app = typer.Typer(help="Evidence packages: export, signing key, verification.",
                           no_args_is_help=True)


def _line(label: str, value: object) -> None:
    typer.echo(f"{label + ':':<36} {value}")


def _camera_lines(camera: CameraEvidence) -> None:
    typer.echo(f"\nTelecamera / Camera {camera.camera} ({camera.name})")
    if camera.file is None or camera.start is None or camera.end is None:
        _line("  Filmato / Clip", "nessun video nell'intervallo / no video in the range")
    else:
        _line("  Filmato / Clip", camera.file)
        _line("  Dal / From", on_screen(camera.start))
        _line("  Al / To", on_screen(camera.end))
        _line("  Dimensione / Size", f"{camera.bytes} byte")
        _line("  SHA-256", camera.sha256)
        _line("  Segmenti di origine / Sources", len(camera.sources))
    for gap in camera.gaps:
        _line("  Interruzione / Gap", f"{on_screen(gap.start)} -> {on_screen(gap.end)}: "
              f"{gap.reason}")


def _print_report(package: Path, report: VerifyReport) -> None:
    _line("Pacchetto / Package", package)
    _line("Chiave usata / Key used", f"Ed25519 {report.key_id}")
    _line("Firma / Signature", "valida / valid" if report.signature_valid
          else "NON VALIDA / NOT VALID")
    custody = report.custody
    if custody is not None:
        typer.echo("\nCatena di custodia / Chain of custody")
        _line("Nome / Name", custody.package)
        _line("Creato il / Created", on_screen(custody.created_at))
        _line("Operatore / Operator", f"{custody.operator} (ruoli / roles: "
              f"{', '.join(custody.roles) or '-'}; ente / agency: {custody.agency or '-'})")
        _line("Finalità / Purpose", f"{custody.purpose} [{custody.purpose_reference}]")
        _line("Richiesta / Request", custody.reference)
        _line("Autorità / Authority", custody.authority or "-")
        _line("Intervallo / Range", f"{on_screen(custody.start)} -> {on_screen(custody.end)}")
        _line("Software", custody.software)
        for camera in custody.cameras:
            _camera_lines(camera)
        typer.echo("")
        _line("File verificati / Files checked", len(report.files_checked))
    if report.problems:
        typer.echo("\nProblemi / Problems:")
        for problem in report.problems:
            typer.echo(f"  - {problem}")
    typer.echo("\nEsito / Result: " + ("VERIFICATO / VERIFIED" if report.ok
                                       else "NON VERIFICATO / NOT VERIFIED"))


@evidence_app.command("verify")
def verify_command(
    package: Annotated[Path, typer.Argument(help="the package folder or its .zip")],
    key: Annotated[Path, typer.Option("--key", help=(
        "the installation's public key (PEM), obtained by another channel; the copy "
        "inside the package is never used"))],
) -> None:
    """Check a package's signature and every file; print its chain of custody."""
    try:
        pem = key.read_bytes()
        report = verify_package(package, pem)
    except OSError as exc:
        typer.echo(f"errore / error: cannot read {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    except InvalidInput as exc:
        typer.echo(f"errore / error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    _print_report(package, report)
    raise typer.Exit(0 if report.ok else 1)


@evidence_app.command("key")
def key_command(
    out: Annotated[Path | None, typer.Option(help="write the PEM here (default: print it)")]
    = None,
) -> None:
    """Print (or write) the installation's public key, making the key pair if there is none."""
    settings = Settings.from_env()
    try:
        signing = installation_key(settings.keys_dir)
    except InvalidInput as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    if out is None:
        typer.echo(signing.public_pem.decode(), nl=False)
    else:
        out.write_bytes(signing.public_pem)
        typer.echo(f"public key written to {out}")
    typer.echo(f"key id: {signing.key_id}", err=True)


def _instant(text: str, option: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


@evidence_app.command("export")
def export_command(
    camera: Annotated[list[str], typer.Option("--camera", help="camera id; repeat")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 with offset")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 with offset")],
    reference: Annotated[str, typer.Option(help="the judicial or police request reference")],
    purpose: Annotated[str, typer.Option(help="why the video is exported")],
    authority: Annotated[str | None, typer.Option(help="to whom it goes")] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder for the package (default: the data folder's evidence/)")] = None,
) -> None:
    """Export a signed evidence package of some cameras' video in a time range."""
    from vigila.cli import _run  # the top-level command line imports this module

    start_at, end_at = _instant(start, "--from"), _instant(end, "--to")

    def export(settings: Settings, db: Database, who: Principal) -> EvidencePackage:
        why = Purpose.parse(purpose, reference)
        key = installation_key(settings.keys_dir)
        return export_evidence(
            db, who, why, root=settings.recordings_root, cameras=camera,
            start=start_at, end=end_at, reference=reference, authority=authority,
            out_dir=out or packages_dir(settings), key=key, software_version=__version__)

    made = _run(export)
    typer.echo(f"package: {made.folder}\nzip:     {made.zip_path}\n"
               f"manifest SHA-256: {made.manifest_sha256}\nkey id: {made.key_id}")
    for part in made.cameras:
        if part.start is None or part.end is None:
            typer.echo(f"  {part.camera}: no video in the range")
        else:
            typer.echo(f"  {part.camera}: {part.file} {on_screen(part.start)} -> "
                       f"{on_screen(part.end)}, {len(part.gaps)} gaps")
