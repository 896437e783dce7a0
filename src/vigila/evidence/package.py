"""Evidence packages: cut, describe, sign, audit; and check one without trusting it.

A package is a folder (and a stored .zip of it) holding one clip per camera, a
manifest that says who exported what, when, why and for whom, the gaps in the
recording and the SHA-256 of every file, and a detached Ed25519 signature over the
manifest's exact bytes. Whoever receives it verifies it with the installation's public
key obtained by another channel: the copy inside is a convenience and is never used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal, Purpose, audit
from vigila.core import Conflict, InvalidInput, NotFound, utcnow
from vigila.core.timeutil import utc_instant
from vigila.evidence.keys import (
    ALGORITHM,
    SigningKey,
    key_id,
    load_public_key,
    signature_matches,
)
from vigila.recording.clips import SegmentRef, cut_clip, segments_for
from vigila.recording.index import HOLE_REASON, timeline
from vigila.recording.recorder import check_camera_id
from vigila.registry.models import DeviceKind
from vigila.registry.tables import devices
from vigila.store import Database

FORMAT = "vigila-evidence"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY = "public-key.pem"
README = "LEGGIMI.txt"
CLIPS = "clips"
MAX_CAMERAS = 16
MAX_RANGE = timedelta(hours=4)  # a synchronous cut (about 1.8 GB an hour a 1080p camera)
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# Package names are made here and come back in URLs and paths: no dots, no slashes.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
_ROME = ZoneInfo("Europe/Rome")


# --- what a package holds ---------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceGap:
    """A stretch of the asked range with no video for one camera, and why."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class CameraEvidence:
    """One camera's part: its clip (None when the range holds no video of it) and gaps."""

    camera: str
    name: str
    file: str | None  # relative to the package folder, '/'-separated
    start: datetime | None  # the real instants the clip covers
    end: datetime | None
    bytes: int
    sha256: str | None
    sources: list[SegmentRef]
    gaps: list[EvidenceGap]

    @property
    def video(self) -> bool:
        return self.file is not None


@dataclass(frozen=True)
class EvidencePackage:
    name: str
    folder: Path
    zip_path: Path
    created_at: datetime
    start: datetime
    end: datetime
    reference: str
    authority: str | None
    manifest_sha256: str
    key_id: str
    cameras: list[CameraEvidence]

    def remove(self) -> None:
        """Delete the package, for a caller whose transaction failed after the export."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.zip_path.unlink(missing_ok=True)


def check_package_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput.on("package", "not a package name (letters, digits, '-', '_')")
    return name


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def on_screen(moment: datetime) -> str:
    """Italian local time first (what the footage's burned-in clock and people use), then UTC."""
    local = moment.astimezone(_ROME)
    return f"{local:%d/%m/%Y %H:%M:%S} ora italiana ({_iso(moment)})"


# --- exporting -------------------------------------------------------------------------


def _text(name: str, value: str | None, low: int, high: int) -> str:
    value = (value or "").strip()
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise InvalidInput.on(name, "must not contain control characters")
    if not low <= len(value) <= high:
        raise InvalidInput.on(name, f"between {low} and {high} characters")
    return value


def _cameras(conn: Connection, actor: Principal, cameras: list[str]) -> dict[str, str]:
    """Camera id -> name, in the order asked; one outside the actor's zones is not found."""
    if not cameras:
        raise InvalidInput.on("cameras", "name at least one camera")
    if len(cameras) > MAX_CAMERAS:
        raise InvalidInput.on("cameras", f"at most {MAX_CAMERAS} cameras in one package")
    if len(set(cameras)) != len(cameras):
        raise InvalidInput.on("cameras", "a camera is named twice")
    for camera in cameras:
        check_camera_id(camera)
    rows = conn.execute(
        sa.select(devices.c.id, devices.c.name)
        .where(devices.c.id.in_(cameras),
               devices.c.kind != DeviceKind.RECORDING_SERVER.value,
               actor.zone_clause(devices.c.zone_id))).all()
    found = {row.id: row.name for row in rows}
    for camera in cameras:
        if camera not in found:
            raise NotFound(f"no camera {camera!r}")
    return {camera: found[camera] for camera in cameras}


def _gaps(conn: Connection, camera: str, start: datetime, end: datetime) -> list[EvidenceGap]:
    """Recorded outages and unexplained holes in [start, end), the range's ends included."""
    entries = timeline(conn, camera, start, end)
    gaps = [EvidenceGap(e.start, e.end, e.reason) for e in entries if e.kind == "gap"]
    # The timeline names holes between spans; the stretches before the first span and
    # after the last one (or all of it, with no video) are holes too when no outage says why.
    cursor = start
    for e in sorted(entries, key=lambda e: e.start):
        if e.start > cursor:
            gaps.append(EvidenceGap(cursor, e.start, HOLE_REASON))
        cursor = max(cursor, e.end)
    if cursor < end:
        gaps.append(EvidenceGap(cursor, end, HOLE_REASON))
    return sorted(gaps, key=lambda g: (g.start, g.end))


def _safe_reference(reference: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", reference).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", ascii_text).strip("-_")[:60].strip("-_")
    return slug or "evidence"


def _reserve(out_dir: Path, base: str) -> str:
    """A package name nobody holds, reserved by an empty folder (mkdir is atomic)."""
    for number in range(1, 1000):
        name = base if number == 1 else f"{base}-{number}"
        if (out_dir / f"{name}.zip").exists():
            continue
        try:
            (out_dir / name).mkdir()
        except FileExistsError:
            continue
        return name
    raise Conflict(f"too many packages named {base}")


def export_evidence(db: Database, actor: Principal, purpose: Purpose, *, root: Path,
                    cameras: list[str], start: datetime, end: datetime, reference: str,
                    authority: str | None = None, out_dir: Path, key: SigningKey,
                    software_version: str) -> EvidencePackage:
    """Cut, describe, sign and zip the cameras' video in [start, end); audited.

    Three steps, so no transaction stays open while video is copied (on SQLite that
    would hold the one write lock and stall the recorders' index): read what to cut,
    cut and sign with no transaction, then write the audit entry. The package appears
    under `out_dir` only when whole (built aside, then renamed) and after its audit
    entry has committed; a failure at any step leaves nothing behind.
    """
    actor.require(Permission.EVIDENCE_EXPORT)
    start, end = utc_instant(start, "start"), utc_instant(end, "end")
    if end <= start:
        raise InvalidInput.on("end", "the end must come after the start")
    if end - start > MAX_RANGE:
        raise InvalidInput.on("end", f"at most {MAX_RANGE.total_seconds() / 3600:g} hours "
                              "in one package; split the range")
    reference = _text("reference", reference, 3, 256)
    authority = _text("authority", authority, 0, 256) or None
    with db.read() as conn:
        named = _cameras(conn, actor, list(cameras))
        plans = [(camera, label, segments_for(conn, camera, start, end),
                  _gaps(conn, camera, start, end)) for camera, label in named.items()]
    if not any(refs for _, _, refs, _ in plans):
        raise NotFound(f"no video for {', '.join(named)} between {_iso(start)} and {_iso(end)}")

    created = utcnow()
    out_dir.mkdir(parents=True, exist_ok=True)
    name = _reserve(out_dir, f"{_safe_reference(reference)}-{_stamp(created)}")
    final, final_zip = out_dir / name, out_dir / f"{name}.zip"
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    placed = False
    try:
        folder = work / name
        (folder / CLIPS).mkdir(parents=True)
        parts: list[CameraEvidence] = []
        for camera, label, refs, gaps in plans:
            file = f"{CLIPS}/{camera}_{_stamp(start)}_{_stamp(end)}.mp4"
            try:
                clip = cut_clip(root, refs, start, end, folder / file)
            except NotFound:  # no segment, or none whose frames fall inside the range
                parts.append(CameraEvidence(camera, label, None, None, None, 0, None, [], gaps))
                continue
            parts.append(CameraEvidence(camera, label, file, clip.start, clip.end, clip.bytes,
                                        clip.sha256, clip.sources, gaps))
        if not any(part.video for part in parts):
            raise NotFound(f"no video for {', '.join(named)} between {_iso(start)} and "
                           f"{_iso(end)}")
        readme = _readme(name, created, actor, reference, authority, start, end,
                         key.key_id).encode()
        _write(folder / README, readme)
        files = [{"path": README, "bytes": len(readme),
                  "sha256": hashlib.sha256(readme).hexdigest()}]
        files += [{"path": p.file, "bytes": p.bytes, "sha256": p.sha256}
                  for p in parts if p.file is not None]
        manifest = _manifest(name, created, software_version, actor, purpose, reference,
                             authority, start, end, parts, files, key.key_id)
        body = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        _write(folder / MANIFEST, body)
        _write(folder / SIGNATURE, base64.b64encode(key.sign(body)) + b"\n")
        _write(folder / PUBLIC_KEY, key.public_pem)
        _zip(folder, work / final_zip.name, name, created)
        digest = hashlib.sha256(body).hexdigest()
        with db.write() as conn:
            audit.record(conn, actor, "evidence.export", f"evidence:{name}", purpose=purpose,
                         recipient=authority, detail={
                             "cameras": list(named), "range": {"start": _iso(start),
                                                               "end": _iso(end)},
                             "reference": reference, "authority": authority,
                             "manifest_sha256": digest, "package": name,
                             "no_video": [p.camera for p in parts if not p.video]})
        os.rename(folder, final)  # onto the empty reserved folder: atomic
        placed = True
        os.replace(work / final_zip.name, final_zip)
    except BaseException:
        if placed:
            shutil.rmtree(final, ignore_errors=True)
        else:
            with suppress(OSError):
                final.rmdir()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return EvidencePackage(name, final, final_zip, created, start, end, reference, authority,
                           digest, key.key_id, parts)


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _zip(folder: Path, target: Path, name: str, created: datetime) -> None:
    """The folder, stored (MP4 is compressed already), under one top folder `name/`."""
    order = [MANIFEST, SIGNATURE, PUBLIC_KEY, README]
    order += sorted(f"{CLIPS}/{p.name}" for p in (folder / CLIPS).iterdir())
    when = created.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for relative in order:
            source = folder / relative
            info = zipfile.ZipInfo(f"{name}/{relative}", date_time=when)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.file_size = source.stat().st_size  # lets zipfile choose ZIP64 up front
            with source.open("rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def _manifest(name: str, created: datetime, software_version: str, actor: Principal,
              purpose: Purpose, reference: str, authority: str | None, start: datetime,
              end: datetime, parts: list[CameraEvidence], files: list[dict[str, Any]],
              signer: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package": name,
        "created_at": _iso(created),
        "software": {"name": "Vigila", "version": software_version},
        "operator": {"username": actor.username, "user_id": actor.user_id,
                     "agency": actor.agency_id, "roles": sorted(r.value for r in actor.roles)},
        "purpose": {"text": purpose.text, "reference": purpose.reference},
        "request": {"reference": reference, "authority": authority},
        "range": {"start": _iso(start), "end": _iso(end)},
        "cameras": [{
            "camera": p.camera,
            "name": p.name,
            "video": p.video,
            "clip": None if p.file is None else {
                "file": p.file, "start": _iso(p.start or start), "end": _iso(p.end or end),
                "bytes": p.bytes, "sha256": p.sha256},
            "sources": [{"path": s.path, "start": _iso(s.start), "end": _iso(s.end),
                         "bytes": s.bytes, "sha256": s.sha256} for s in p.sources],
            "gaps": [{"start": _iso(g.start), "end": _iso(g.end), "reason": g.reason}
                     for g in p.gaps],
        } for p in parts],
        "files": files,
        "signature": {"algorithm": ALGORITHM, "key_id": signer, "file": SIGNATURE,
                      "encoding": "base64", "over": f"the exact bytes of {MANIFEST}"},
    }


def _readme(name: str, created: datetime, actor: Principal, reference: str,
            authority: str | None, start: datetime, end: datetime, signer: str) -> str:
    def rows(pairs: list[tuple[str, str]]) -> str:
        return "\n".join(f"  {left:<20}{right}" for left, right in pairs)

    contents_it = rows([
        (f"{CLIPS}/", "i filmati MP4, uno per telecamera: copia del flusso registrato,"),
        ("", "senza ricodifica"),
        (MANIFEST, "descrizione firmata: chi ha esportato, quando, perché, per quale"),
        ("", "richiesta; per ogni telecamera gli orari reali del filmato, le"),
        ("", "interruzioni della registrazione, i segmenti di origine; l'impronta"),
        ("", "SHA-256 di ogni file"),
        (SIGNATURE, f"firma {ALGORITHM} (base64) dei byte esatti di {MANIFEST}"),
        (PUBLIC_KEY, "copia della chiave pubblica, solo per comodità: per verificare"),
        ("", "usate la chiave avuta per altra via dall'ente che ha prodotto il"),
        ("", f"pacchetto, controllando che il suo identificativo sia {signer}"),
        (README, "questo file")])
    contents_en = rows([
        (f"{CLIPS}/", "the MP4 clips, one per camera: a copy of the recorded stream,"),
        ("", "not re-encoded"),
        (MANIFEST, "signed description: who exported, when, why, for which request;"),
        ("", "per camera the real times of the clip, the recording gaps, the"),
        ("", "source segments; the SHA-256 of every file"),
        (SIGNATURE, f"{ALGORITHM} signature (base64) over the exact bytes of {MANIFEST}"),
        (PUBLIC_KEY, "a copy of the public key, for convenience only: verify with the"),
        ("", "key obtained by another channel from the producing agency, checking"),
        ("", f"that its id is {signer}"),
        (README, "this file")])
    return f"""\
PACCHETTO DI PROVA VIDEO - Vigila
=================================
Pacchetto:   {name}
Richiesta:   {reference}
Autorità:    {authority or "-"}
Creato il:   {on_screen(created)}, da {actor.username}
Intervallo:  dal {on_screen(start)}
             al  {on_screen(end)}
Firma:       {ALGORITHM}, chiave {signer}

Contenuto
{contents_it}

Dove la registrazione si interrompe, il filmato prosegue dall'istante in cui riprende:
le interruzioni sono elencate in {MANIFEST} ("gaps").

Come verificare
  Con Vigila:
    vigila evidence verify {name}.zip --key CHIAVE-PUBBLICA.pem
  Con OpenSSL 3, nella cartella del pacchetto:
    base64 -d {SIGNATURE} > firma.bin
    openssl pkeyutl -verify -pubin -inkey CHIAVE-PUBBLICA.pem -rawin -in {MANIFEST} \\
        -sigfile firma.bin
    sha256sum {CLIPS}/*.mp4 {README}   (confrontare con "files" in {MANIFEST})
  Il pacchetto è integro se la firma è valida con la chiave dell'ente, ogni impronta
  coincide e in {CLIPS}/ non ci sono file non elencati.

VIDEO EVIDENCE PACKAGE - Vigila
===============================
Package:     {name}
Request:     {reference}
Authority:   {authority or "-"}
Created:     {_iso(created)} (UTC), by {actor.username}
Range:       {_iso(start)} to {_iso(end)} (UTC)
Signature:   {ALGORITHM}, key {signer}

Contents
{contents_en}

Where the recording stops, the clip goes on from the moment it resumes: the gaps are
listed in {MANIFEST} ("gaps").

How to verify
  With Vigila:
    vigila evidence verify {name}.zip --key PUBLIC-KEY.pem
  With OpenSSL 3: the commands above, in the package folder; then compare the output
  of sha256sum with "files" in {MANIFEST}.
  The package is intact when the signature is valid with the agency's key, every hash
  matches and {CLIPS}/ holds no unlisted file.
"""


# --- downloading a stored package -----------------------------------------------------


def package_for_download(conn: Connection, actor: Principal, purpose: Purpose, *,
                         out_dir: Path, name: str) -> Path:
    """The stored zip of package `name`, for its maker or a user holding all its cameras'
    zones (anyone else: not found); audited as evidence.download."""
    actor.require(Permission.EVIDENCE_EXPORT)
    check_package_name(name)
    folder, archive = out_dir / name, out_dir / f"{name}.zip"
    missing = NotFound(f"no evidence package {name!r}")
    try:
        body = (folder / MANIFEST).read_bytes()
        manifest = json.loads(body)
        maker = manifest["operator"]["user_id"]
        cameras = [str(c["camera"]) for c in manifest["cameras"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise missing from exc
    if not archive.is_file():
        raise missing
    if not (actor.user_id is not None and actor.user_id == maker):
        visible = set(conn.execute(sa.select(devices.c.id).where(
            devices.c.id.in_(cameras), actor.zone_clause(devices.c.zone_id))).scalars())
        if not actor.all_zones and visible != set(cameras):
            raise missing
    audit.record(conn, actor, "evidence.download", f"evidence:{name}", purpose=purpose,
                 detail={"package": name, "cameras": cameras,
                         "manifest_sha256": hashlib.sha256(body).hexdigest()})
    return archive


# --- verifying -------------------------------------------------------------------------


@dataclass(frozen=True)
class Custody:
    """The chain of custody a valid signature vouches for."""

    package: str
    created_at: datetime
    software: str
    operator: str
    agency: str | None
    roles: list[str]
    purpose: str
    purpose_reference: str
    reference: str
    authority: str | None
    start: datetime
    end: datetime
    key_id: str
    cameras: list[CameraEvidence]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    key_id: str  # of the key given
    signature_valid: bool
    problems: list[str] = field(default_factory=list)
    files_checked: list[str] = field(default_factory=list)
    custody: Custody | None = None  # only when the signature holds


class _Malformed(ValueError):
    pass


def _get(obj: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
        raise _Malformed(f"{key!r} missing or of the wrong type")
    return obj[key]


def _when(obj: Any, key: str) -> datetime:
    text = _get(obj, key, str)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Malformed(f"{key!r} is not a time") from exc
    if moment.tzinfo is None:
        raise _Malformed(f"{key!r} has no zone")
    return moment.astimezone(UTC)


def _custody(manifest: Any) -> tuple[Custody, list[dict[str, Any]]]:
    if _get(manifest, "format", str) != FORMAT:
        raise _Malformed("not a Vigila evidence manifest")
    if _get(manifest, "format_version", int) != FORMAT_VERSION:
        raise _Malformed(f"format version {manifest['format_version']} is not known here")
    operator = _get(manifest, "operator", dict)
    purpose = _get(manifest, "purpose", dict)
    request = _get(manifest, "request", dict)
    span = _get(manifest, "range", dict)
    cameras = []
    for entry in _get(manifest, "cameras", list):
        clip = _get(entry, "clip", (dict, type(None)))
        sources = [SegmentRef(_get(entry, "camera", str), _get(s, "path", str),
                              _when(s, "start"), _when(s, "end"), _get(s, "bytes", int),
                              _get(s, "sha256", str)) for s in _get(entry, "sources", list)]
        gaps = [EvidenceGap(_when(g, "start"), _when(g, "end"), _get(g, "reason", str))
                for g in _get(entry, "gaps", list)]
        cameras.append(CameraEvidence(
            _get(entry, "camera", str), _get(entry, "name", str),
            _get(clip, "file", str) if clip else None,
            _when(clip, "start") if clip else None, _when(clip, "end") if clip else None,
            _get(clip, "bytes", int) if clip else 0,
            _get(clip, "sha256", str) if clip else None, sources, gaps))
    files = _get(manifest, "files", list)
    for item in files:
        for key, kind in (("path", str), ("bytes", int), ("sha256", str)):
            _get(item, key, kind)
    software = _get(manifest, "software", dict)
    custody = Custody(
        _get(manifest, "package", str), _when(manifest, "created_at"),
        f"{_get(software, 'name', str)} {_get(software, 'version', str)}",
        _get(operator, "username", str), _get(operator, "agency", (str, type(None))),
        [str(r) for r in _get(operator, "roles", list)], _get(purpose, "text", str),
        _get(purpose, "reference", str), _get(request, "reference", str),
        _get(request, "authority", (str, type(None))), _when(span, "start"),
        _when(span, "end"), _get(_get(manifest, "signature", dict), "key_id", str), cameras)
    return custody, files


def _safe_name(name: str) -> bool:
    """A plain relative '/'-path: not absolute, no '..', no drive, no control characters."""
    parts = name.split("/")
    return bool(name) and not (
        name.startswith("/") or "\\" in name or ":" in parts[0]
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(ch) < 32 or ch == "\x7f" for ch in name))


Opener = Callable[[], IO[bytes]]


def _folder_entries(folder: Path, problems: list[str]) -> dict[str, Opener]:
    """Every regular file under `folder`; links and special files are reported, not read."""
    found: dict[str, Opener] = {}

    def opener(path: Path) -> Opener:
        def open_it() -> IO[bytes]:
            return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        return open_it

    def walk(directory: Path, prefix: str, depth: int) -> None:
        with os.scandir(directory) as it:
            for entry in sorted(it, key=lambda e: e.name):
                relative = prefix + entry.name
                if entry.is_symlink():
                    problems.append(f"{relative}: a symbolic link, refused")
                elif entry.is_dir(follow_symlinks=False):
                    if depth < 4:
                        walk(Path(entry.path), relative + "/", depth + 1)
                    else:
                        problems.append(f"{relative}: folders nested too deep, not read")
                elif entry.is_file(follow_symlinks=False):
                    found[relative] = opener(Path(entry.path))
                else:
                    problems.append(f"{relative}: not a regular file, refused")

    walk(folder, "", 0)
    return found


def _zip_entries(archive: zipfile.ZipFile, problems: list[str]) -> dict[str, Opener]:
    """The members of a zip, under one optional top folder; any unsafe name refuses it all."""
    members = [i for i in archive.infolist() if not i.is_dir()]
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if not _safe_name(info.filename.rstrip("/") if info.is_dir() else info.filename):
            problems.append(f"unsafe name in the zip, refused: {info.filename!r}")
        elif stat.S_ISLNK(mode):
            problems.append(f"symbolic link in the zip, refused: {info.filename!r}")
        elif info.flag_bits & 0x1:
            problems.append(f"encrypted member in the zip, refused: {info.filename!r}")
    if problems:
        return {}
    tops = {i.filename.split("/", 1)[0] for i in members}
    strip = len(tops) == 1 and all("/" in i.filename for i in members)
    found: dict[str, Opener] = {}
    for info in members:
        relative = info.filename.split("/", 1)[1] if strip else info.filename
        if relative in found:
            problems.append(f"name twice in the zip, refused: {info.filename!r}")
            return {}
        found[relative] = _member(archive, info)
    return found


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Opener:
    def open_it() -> IO[bytes]:
        return archive.open(info)
    return open_it


@contextmanager
def _entries(path: Path, problems: list[str]) -> Iterator[dict[str, Opener]]:
    if path.is_dir():
        yield _folder_entries(path, problems)
        return
    if not path.is_file():
        raise InvalidInput.on("package", f"{path} is neither a package folder nor a .zip")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput.on("package", f"{path} is not a readable zip: {exc}") from exc
    with archive:
        yield _zip_entries(archive, problems)


def _read(open_it: Opener, limit: int) -> bytes | None:
    with open_it() as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def _measure(open_it: Opener) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open_it() as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def verify_package(path: Path, public_key_pem: bytes) -> VerifyReport:
    """Check a package (folder or .zip) against the GIVEN public key, trusting nothing else.

    InvalidInput when the key or the path is unusable; otherwise a report whose `problems`
    name each file at fault. The chain of custody comes only with a valid signature.
    """
    public = load_public_key(public_key_pem)
    given = key_id(public)
    problems: list[str] = []
    with _entries(path, problems) as found:
        if problems and not found:
            return VerifyReport(False, given, False, problems)
        if MANIFEST not in found or SIGNATURE not in found:
            missing = [n for n in (MANIFEST, SIGNATURE) if n not in found]
            return VerifyReport(False, given, False, [*problems, *(
                f"{n}: missing" for n in missing)])
        body = _read(found[MANIFEST], MAX_MANIFEST_BYTES)
        signature = _read(found[SIGNATURE], 4096)
        if body is None or signature is None:
            return VerifyReport(False, given, False,
                                [*problems, f"{MANIFEST} or {SIGNATURE}: too large"])
        if not signature_matches(public, body, signature):
            return VerifyReport(False, given, False, [*problems, (
                f"{SIGNATURE}: the signature does not match {MANIFEST} with the key given "
                f"({given}): the manifest was altered, or it was signed with another key")])
        try:
            custody, files = _custody(json.loads(body))
        except (_Malformed, ValueError) as exc:
            return VerifyReport(False, given, True,
                                [*problems, f"{MANIFEST}: signed but malformed: {exc}"])
        if custody.key_id != given:
            problems.append(f"{MANIFEST}: names key {custody.key_id}, signed by {given}")
        checked: list[str] = []
        listed: dict[str, tuple[int, str]] = {}
        for item in files:
            name, size, digest = item["path"], item["bytes"], item["sha256"]
            if not _safe_name(name) or name in (MANIFEST, SIGNATURE):
                problems.append(f"unsafe file name in {MANIFEST}, refused: {name!r}")
                continue
            listed[name] = (size, digest)
            if name not in found:
                problems.append(f"{name}: missing")
                continue
            try:
                real_size, real_digest = _measure(found[name])
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if real_size != size:
                problems.append(f"{name}: {real_size} bytes, the manifest says {size}")
            elif real_digest != digest:
                problems.append(f"{name}: SHA-256 differs from the manifest: the file was "
                                "altered")
            else:
                checked.append(name)
        for camera in custody.cameras:
            if camera.file is not None and listed.get(camera.file) != (camera.bytes,
                                                                       camera.sha256):
                problems.append(f"{camera.file}: the clip of {camera.camera} is not among the "
                                "listed files with the same size and SHA-256")
        for name in sorted(found):
            if name not in listed and name not in (MANIFEST, SIGNATURE, PUBLIC_KEY):
                problems.append(f"{name}: not listed in {MANIFEST}" + (
                    " (an extra file in the clips folder)" if name.startswith(f"{CLIPS}/")
                    else ""))
    return VerifyReport(not problems, given, True, problems, checked, custody)
