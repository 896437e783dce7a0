"""Capacity planning: network, CPU, disk throughput, storage and servers for a camera fleet.

The input is a `WhatIf`: camera groups, plate readers, retention, recording mode, storage
layout, server limits and (optionally) unit prices. It comes from a what-if file
(`load_whatif`, YAML or JSON) or from the registry (`from_registry`). `plan_capacity` turns it
into a `CapacityPlan`; `render_table` prints that for people, `model_dump_json` for machines.

Units, stated once: Mbit/s is 10^6 bit/s, kbit/s 10^3 bit/s, MB/s 10^6 byte/s, TB 10^12 byte
(decimal, as disk vendors sell them: a "16 TB" disk holds 16 x 10^12 bytes).

Everything here is a pure function of its input, except `load_whatif` (reads a file) and
`from_registry` (reads the devices table).
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import sqlalchemy as sa
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Connection

from vigila.core.errors import FieldError, InvalidInput
from vigila.core.text import NoNul
from vigila.registry.models import Codec, DeviceKind, DeviceStatus, Strict
from vigila.registry.service import field_errors
from vigila.registry.tables import devices

__all__ = [
    "BITS_PER_PIXEL",
    "DEFAULT_STREAMS_PER_CORE",
    "Activity",
    "CameraGroup",
    "CapacityPlan",
    "Constraint",
    "ConstraintMargin",
    "Cost",
    "PlateReaderGroup",
    "Prices",
    "Recording",
    "RecordingMode",
    "Servers",
    "Storage",
    "WhatIf",
    "estimate_bitrate_kbps",
    "from_registry",
    "load_whatif",
    "parse_whatif",
    "plan_capacity",
    "render_table",
]

SECONDS_PER_DAY = 86_400
LEGAL_MAX_RETENTION_DAYS = 7  # DL 11/2009 art. 6 c. 8: urban-security video, at most 7 days

# A DEFAULT, not a measurement: stream-copy recording (no decoding) of one H.264/H.265 stream
# costs a few percent of a core, so 40 streams per core leaves room. The recording benchmark
# will measure the real figure on the target hardware; put that in servers.streams_per_core.
DEFAULT_STREAMS_PER_CORE = 40.0


class Activity(StrEnum):
    """How much the scene moves: drives the bitrate of a variable-bitrate encoder."""

    LOW = "low"  # a quiet car park, a corridor at night
    MEDIUM = "medium"  # a street with ordinary traffic
    HIGH = "high"  # a busy square, a market, trees in the wind, rain at night


# Bits per pixel per frame, by codec and scene activity: bit/s ~ width x height x fps x bpp.
# RULE OF THUMB, not a standard. The medium column is chosen so that it reproduces the
# encoder presets commonly used for city surveillance: 1080p25 H.264 ~ 4 Mbit/s
# (1920 x 1080 x 25 x 0.08 = 4.15 Mbit/s); H.265 about half of H.264 at equal quality;
# MJPEG compresses every frame alone, roughly ten times H.264, and moves little with activity.
# Vendors' bitrate calculators differ from these by +/- 50 %; a measured bitrate_kbps always
# wins over an estimate.
BITS_PER_PIXEL: dict[Codec, dict[Activity, float]] = {
    Codec.H264: {Activity.LOW: 0.04, Activity.MEDIUM: 0.08, Activity.HIGH: 0.14},
    Codec.H265: {Activity.LOW: 0.02, Activity.MEDIUM: 0.04, Activity.HIGH: 0.07},
    Codec.MJPEG: {Activity.LOW: 0.6, Activity.MEDIUM: 0.8, Activity.HIGH: 1.0},
}

# Stream settings assumed for a registry device that has none (the commonest installation).
_ASSUMED_STREAM: dict[str, tuple[int, int, float, Codec]] = {
    DeviceKind.PLATE_READER.value: (1280, 720, 25.0, Codec.H264),
    DeviceKind.CAMERA.value: (1920, 1080, 25.0, Codec.H264),
    DeviceKind.CAMERA_ANPR.value: (1920, 1080, 25.0, Codec.H264),
}

GroupName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                      NoNul]
Note = Annotated[str, StringConstraints(max_length=2000), NoNul]
Count = Annotated[int, Field(ge=0, le=100_000)]
Kbps = Annotated[int, Field(ge=16, le=1_000_000)]
Fraction = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def estimate_bitrate_kbps(width: int, height: int, fps: float, codec: Codec,
                          activity: Activity) -> int:
    """A stream's bitrate from its picture and scene, by the BITS_PER_PIXEL rule of thumb."""
    return round(width * height * fps * BITS_PER_PIXEL[codec][activity] / 1000)


# --- the what-if -------------------------------------------------------------------------------

class CameraGroup(Strict):
    """Cameras alike in stream settings. Give the measured bitrate, or the scene activity."""

    name: GroupName
    count: Count
    width: Annotated[int, Field(ge=16, le=16384)]
    height: Annotated[int, Field(ge=16, le=16384)]
    fps: Annotated[float, Field(gt=0, le=240, allow_inf_nan=False)]
    codec: Codec
    bitrate_kbps: Kbps | None = None
    activity: Activity | None = Field(default=None, validate_default=True)
    new: bool = Field(default=False, description="to be bought: priced in the cost")

    @field_validator("activity")
    @classmethod
    def _bitrate_or_activity(cls, value: Activity | None,
                             info: ValidationInfo) -> Activity | None:
        if "bitrate_kbps" not in info.data:  # bitrate_kbps itself was bad: said there
            return value
        if value is not None and info.data["bitrate_kbps"] is not None:
            raise PydanticCustomError(
                "bitrate_or_activity",
                "give bitrate_kbps or activity, not both (activity only estimates a bitrate)")
        if value is None and info.data["bitrate_kbps"] is None:
            raise PydanticCustomError(
                "bitrate_or_activity",
                "give bitrate_kbps (measured) or activity (low, medium, high) to estimate it")
        return value

    def stream_kbps(self) -> int:
        if self.bitrate_kbps is not None:
            return self.bitrate_kbps
        assert self.activity is not None  # the validator requires one of the two
        return estimate_bitrate_kbps(self.width, self.height, self.fps, self.codec,
                                     self.activity)


class PlateReaderGroup(Strict):
    """Plate readers: their context video is recorded like a camera's."""

    name: GroupName = "plate readers"
    count: Count
    bitrate_kbps: Kbps
    new: bool = Field(default=False, description="to be bought: priced in the cost")


class RecordingMode(StrEnum):
    CONTINUOUS = "continuous"
    EVENT = "event"


class Recording(Strict):
    mode: RecordingMode = RecordingMode.CONTINUOUS
    event_fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        default=None, validate_default=True,
        description="event mode: share of the time a camera records, 0..1")

    @field_validator("event_fraction")
    @classmethod
    def _fraction_for_events(cls, value: float | None, info: ValidationInfo) -> float | None:
        mode = info.data.get("mode")
        if mode == RecordingMode.EVENT and value is None:
            raise PydanticCustomError("event_fraction", "event recording needs event_fraction "
                                      "(the share of the time recorded, 0..1)")
        if mode == RecordingMode.CONTINUOUS and value is not None:
            raise PydanticCustomError("event_fraction",
                                      "applies to event recording only (mode: event)")
        return value


Raid = Literal[0, 1, 5, 6, 10]
DEFAULT_RAID_GROUP = 12  # RAID 5/6 disks per group when not given: two groups fill 24 bays


class Storage(Strict):
    raid: Raid = 6
    disks_per_group: Annotated[int, Field(ge=3, le=32)] | None = Field(
        default=None, validate_default=True,
        description="RAID 5/6 only: disks in one parity group (default 12)")
    disk_tb: Annotated[float, Field(ge=0.01, le=200, allow_inf_nan=False)] = 16.0
    filesystem_overhead: Annotated[Fraction, Field(lt=0.5)] = Field(
        default=0.05, description="share of an array's capacity the filesystem keeps for itself")
    headroom: Annotated[Fraction, Field(lt=0.9)] = Field(
        default=0.15, description="share of the filesystem kept free at full retention")

    @field_validator("disks_per_group")
    @classmethod
    def _group_for_parity(cls, value: int | None, info: ValidationInfo) -> int | None:
        raid = info.data.get("raid")
        if raid in (5, 6):
            if value is None:
                return DEFAULT_RAID_GROUP
            if raid == 6 and value < 4:
                raise PydanticCustomError("raid_group", "RAID 6 needs at least 4 disks a group")
            return value
        if value is not None and raid is not None:
            raise PydanticCustomError(
                "raid_group", "applies to RAID 5 and 6 only (RAID 1 and 10 mirror pairs, "
                "RAID 0 has no groups)")
        return value

    def geometry(self) -> tuple[int, int]:
        """(disks in a group, disks of it that hold data)."""
        if self.raid == 0:
            return 1, 1
        if self.raid in (1, 10):
            return 2, 1
        n = self.disks_per_group or DEFAULT_RAID_GROUP
        return n, n - (1 if self.raid == 5 else 2)


class Servers(Strict):
    """Recording servers: how many are available and what one of them can take.

    Lower bounds are those of real hardware: a capacity that rounds to nothing would
    divide by zero, and no server is that small.
    """

    count: Annotated[int, Field(ge=0, le=10_000)] = Field(
        description="recording servers available, the N+1 spare included")
    nic_gbps: Annotated[float, Field(ge=0.01, le=1000, allow_inf_nan=False)] = Field(
        default=10.0, description="NIC capacity facing the cameras, Gbit/s")
    nic_max_utilisation: Annotated[float, Field(ge=0.01, le=1, allow_inf_nan=False)] = Field(
        default=0.7, description="share of the NIC ingest may use; the rest absorbs bursts, "
        "live view, playback and exports")
    disk_write_mbps: Annotated[float, Field(ge=1, le=100_000, allow_inf_nan=False)] = Field(
        default=800.0, description="sustained write of recorded data one server's arrays "
        "accept, MB/s (10^6 byte/s), RAID parity included, as measured")
    cores: Annotated[int, Field(ge=1, le=1024)] = 16
    streams_per_core: Annotated[float, Field(ge=0.1, le=10_000, allow_inf_nan=False)] | None = (
        Field(default=None, description="measured by the recording benchmark; unset: "
              f"{DEFAULT_STREAMS_PER_CORE:g}, a default"))
    disk_bays: Annotated[int, Field(ge=1, le=1000)] = 24
    n_plus_one: bool = Field(default=True, description="one more server on standby, equipped "
                             "like the others, takes over a failed one")


class Prices(Strict):
    """Unit prices in euros; any may be left out. Indicative figures make an indicative cost."""

    server_eur: Price | None = Field(default=None, description="a server without disks")
    disk_eur: Price | None = None
    camera_eur: Price | None = None
    plate_reader_eur: Price | None = None


class WhatIf(Strict):
    name: Note | None = None
    notes: list[Note] = Field(default_factory=list)
    cameras: list[CameraGroup] = Field(default_factory=list)
    plate_readers: list[PlateReaderGroup] = Field(default_factory=list)
    retention_days: Annotated[int, Field(ge=1, le=365)] = LEGAL_MAX_RETENTION_DAYS
    legal_hold_reason: Note | None = Field(
        default=None, description="why video is kept longer than 7 days (a request of the "
        "judicial authority or judicial police)")
    recording: Recording = Field(default_factory=Recording)
    storage: Storage = Field(default_factory=Storage)
    servers: Servers
    prices: Prices | None = None

    @field_validator("servers")
    @classmethod
    def _group_fits_a_server(cls, value: Servers, info: ValidationInfo) -> Servers:
        storage = info.data.get("storage")
        if isinstance(storage, Storage) and storage.geometry()[0] > value.disk_bays:
            raise PydanticCustomError(
                "raid_group", "disk_bays ({bays}) cannot hold one RAID group of "
                "storage.disks_per_group ({group}) disks",
                {"bays": value.disk_bays, "group": storage.geometry()[0]})
        return value


# --- the plan ----------------------------------------------------------------------------------

class Constraint(StrEnum):
    NIC = "nic"
    CPU = "cpu"
    DISK_WRITE = "disk_write"
    DISK_BAYS = "disk_bays"


_LABELS = {
    Constraint.NIC: "NIC / Rete",
    Constraint.CPU: "CPU streams / Flussi",
    Constraint.DISK_WRITE: "Disk write / Scrittura",
    Constraint.DISK_BAYS: "Disk bays / Alloggiamenti",
}


class ConstraintMargin(Strict):
    constraint: Constraint
    label: str
    unit: str
    load: float = Field(description="what the whole fleet asks")
    capacity_per_server: float
    servers_needed: int = Field(description="working servers this constraint alone needs")
    utilisation_pct: float | None = Field(
        description="load over the capacity of the available working servers; None without any")
    headroom_servers: int = Field(description="available working servers minus servers_needed")


class Cost(Strict):
    """Indicative: unit prices times quantities, nothing for installation, cabling or VAT."""

    servers_eur: float | None
    disks_eur: float | None
    cameras_eur: float | None
    plate_readers_eur: float | None
    total_eur: float = Field(description="sum of the lines that have a price")


class CapacityPlan(Strict):
    name: str | None
    cameras: int
    plate_readers: int
    streams: int
    ingest_mbps: float = Field(description="every stream at its bitrate, Mbit/s")
    ingest_mbps_per_server: float | None = Field(
        description="ingest spread evenly over the working servers of the plan")
    recorded_mbps: float = Field(description="average written to disk, Mbit/s")
    retention_days: int
    recording_mode: RecordingMode
    storage_tb_usable_needed: float = Field(description="the video itself, TB")
    storage_tb_filesystem: float = Field(description="filesystem size to keep the headroom free")
    storage_tb_array: float = Field(description="RAID capacity, filesystem overhead included")
    storage_tb_raw: float = Field(description="disk capacity after RAID, filesystem, headroom")
    raid: int
    disks_per_group: int
    disk_tb: float
    disks_needed: int = Field(description="whole RAID groups holding storage_tb_array, pooled")
    disks_per_server: int | None = Field(
        description="whole RAID groups per working server, its share of the storage")
    disks_installed: int = Field(description="disks_per_server on every server of the plan")
    servers_available: int
    spare_servers: int
    servers_working: int = Field(description="available servers less the N+1 spare")
    servers_needed_working: int
    servers_needed: int = Field(description="by the binding constraint, plus the N+1 spare")
    servers_in_plan: int = Field(description="the available servers, or more if they fall short")
    sufficient: bool
    margin_servers: int = Field(description="available minus needed")
    binding_constraint: Constraint | None
    constraints: list[ConstraintMargin]
    streams_per_core: float
    streams_per_core_is_default: bool
    cost: Cost | None
    warnings: list[str]
    notes: list[str]


def _ceil(x: float) -> int:
    # 3.0000000000000004 servers is 3: float error must not buy one more.
    return math.ceil(round(x, 9))


def plan_capacity(whatif: WhatIf) -> CapacityPlan:
    """Size the recording tier for `whatif`; see the module docstring for units."""
    w = whatif
    warnings: list[str] = []
    notes = list(w.notes)

    cameras = sum(g.count for g in w.cameras)
    readers = sum(g.count for g in w.plate_readers)
    streams = cameras + readers
    ingest_kbps = (sum(g.count * g.stream_kbps() for g in w.cameras)
                   + sum(g.count * g.bitrate_kbps for g in w.plate_readers))
    ingest_mbps = ingest_kbps / 1000
    event = w.recording.mode == RecordingMode.EVENT
    fraction = w.recording.event_fraction if event and w.recording.event_fraction else 1.0
    recorded_mbps = ingest_mbps * fraction

    # bytes = bit/s x s / 8; the filesystem is sized so the video fills (1 - headroom) of it,
    # and the array so the filesystem's own overhead still leaves that much.
    usable_tb = recorded_mbps * 1e6 * SECONDS_PER_DAY * w.retention_days / 8 / 1e12
    filesystem_tb = usable_tb / (1 - w.storage.headroom)
    array_tb = filesystem_tb / (1 - w.storage.filesystem_overhead)
    group_disks, data_disks = w.storage.geometry()
    raw_tb = array_tb * group_disks / data_disks
    group_tb = data_disks * w.storage.disk_tb  # usable capacity of one RAID group
    disks_needed = _ceil(array_tb / group_tb) * group_disks
    groups_per_server = w.servers.disk_bays // group_disks  # a group never spans two servers

    per_core = w.servers.streams_per_core or DEFAULT_STREAMS_PER_CORE
    # In event mode the cameras still stream all the time (the recorder watches for the event)
    # and may all record at once, so NIC, CPU and disk write are sized for the peak.
    loads = {
        Constraint.NIC: ("Mbit/s", ingest_mbps,
                         w.servers.nic_gbps * 1000 * w.servers.nic_max_utilisation),
        Constraint.CPU: ("streams", float(streams), w.servers.cores * per_core),
        Constraint.DISK_WRITE: ("MB/s", ingest_mbps / 8, w.servers.disk_write_mbps),
        Constraint.DISK_BAYS: ("TB", array_tb, groups_per_server * group_tb),
    }
    spare = 1 if w.servers.n_plus_one else 0
    working = max(w.servers.count - spare, 0)
    margins = []
    for constraint, (unit, load, capacity) in loads.items():
        needed = _ceil(load / capacity)
        margins.append(ConstraintMargin(
            constraint=constraint, label=_LABELS[constraint], unit=unit,
            load=round(load, 3), capacity_per_server=round(capacity, 3),
            servers_needed=needed,
            utilisation_pct=round(100 * load / (working * capacity), 1) if working else None,
            headroom_servers=working - needed))
    # The constraint that runs out first is the one with most load per server of capacity.
    ratios = {c: load / cap for c, (_, load, cap) in loads.items()}
    binding = max(ratios, key=lambda c: ratios[c]) if any(ratios.values()) else None

    needed_working = max(m.servers_needed for m in margins)
    servers_needed = needed_working + spare if needed_working else 0
    in_plan = max(w.servers.count, servers_needed)
    plan_working = in_plan - spare if in_plan > spare else 0
    disks_per_server: int | None = None
    disks_installed = 0
    if plan_working:
        # Each working server holds its share in whole RAID groups; the spare is equipped the
        # same, so it can keep a full retention while a failed server is repaired.
        per_server = _ceil(array_tb / plan_working / group_tb) * group_disks
        disks_per_server, disks_installed = per_server, per_server * in_plan

    if w.servers.n_plus_one and w.servers.count == 1:
        warnings.append("servers.count is 1 with n_plus_one: the only server is the spare, "
                        "none is left working")
    if w.retention_days > LEGAL_MAX_RETENTION_DAYS and not w.legal_hold_reason:
        warnings.append(
            f"retention_days {w.retention_days} exceeds the {LEGAL_MAX_RETENTION_DAYS} days "
            "allowed for urban-security video (DL 11/2009 art. 6 c. 8); only a legal hold "
            "justifies more: state it in legal_hold_reason")
    if w.servers.streams_per_core is None:
        warnings.append(
            f"streams_per_core {DEFAULT_STREAMS_PER_CORE:g} is a default, not a measurement: "
            "replace it with the recording benchmark's figure for these servers")
    if w.storage.raid == 0:
        warnings.append("RAID 0: one failed disk loses the recordings of its server")
    elif w.storage.raid == 5 and w.storage.disk_tb >= 8:
        warnings.append(f"RAID 5 with {w.storage.disk_tb:g} TB disks: a second fault during "
                        "the long rebuild loses the array; RAID 6 is the usual choice")
    if event:
        notes.append("event recording: storage holds event_fraction of the time; network, "
                     "CPU and disk write are sized for every camera recording at once")

    cost = None
    if w.prices is not None:
        cost = _cost(w, w.prices, in_plan, disks_installed, warnings)

    return CapacityPlan(
        name=w.name, cameras=cameras, plate_readers=readers, streams=streams,
        ingest_mbps=round(ingest_mbps, 3),
        ingest_mbps_per_server=round(ingest_mbps / plan_working, 3) if plan_working else None,
        recorded_mbps=round(recorded_mbps, 3), retention_days=w.retention_days,
        recording_mode=w.recording.mode,
        storage_tb_usable_needed=round(usable_tb, 3),
        storage_tb_filesystem=round(filesystem_tb, 3), storage_tb_array=round(array_tb, 3),
        storage_tb_raw=round(raw_tb, 3), raid=w.storage.raid, disks_per_group=group_disks,
        disk_tb=w.storage.disk_tb, disks_needed=disks_needed, disks_per_server=disks_per_server,
        disks_installed=disks_installed, servers_available=w.servers.count, spare_servers=spare,
        servers_working=working, servers_needed_working=needed_working,
        servers_needed=servers_needed, servers_in_plan=in_plan,
        sufficient=w.servers.count >= servers_needed,
        margin_servers=w.servers.count - servers_needed, binding_constraint=binding,
        constraints=margins, streams_per_core=per_core,
        streams_per_core_is_default=w.servers.streams_per_core is None,
        cost=cost, warnings=warnings, notes=notes)


def _cost(w: WhatIf, prices: Prices, servers: int, disks: int, warnings: list[str]) -> Cost:
    """The recording tier as planned (servers and their disks) and the devices to be bought."""
    new_cameras = sum(g.count for g in w.cameras if g.new)
    new_readers = sum(g.count for g in w.plate_readers if g.new)
    lines: dict[str, tuple[float | None, int]] = {
        "server_eur": (prices.server_eur, servers),
        "disk_eur": (prices.disk_eur, disks),
        "camera_eur": (prices.camera_eur, new_cameras),
        "plate_reader_eur": (prices.plate_reader_eur, new_readers),
    }
    amounts: dict[str, float | None] = {}
    for key, (price, quantity) in lines.items():
        amounts[key] = None if price is None else round(price * quantity, 2)
        if price is None and quantity:
            warnings.append(f"no prices.{key}: the cost leaves out {quantity} of them")
    return Cost(servers_eur=amounts["server_eur"], disks_eur=amounts["disk_eur"],
                cameras_eur=amounts["camera_eur"],
                plate_readers_eur=amounts["plate_reader_eur"],
                total_eur=round(sum(a for a in amounts.values() if a is not None), 2))


# --- what-if files -----------------------------------------------------------------------------

_Format = Literal["yaml", "json"]
_FILE = "(file)"  # the field a fault of the file as a whole is reported under


def load_whatif(path: str | Path) -> WhatIf:
    """Read a what-if file: JSON for `.json`, YAML for `.yaml`/`.yml`, else by its content.

    Every fault raises `InvalidInput` naming where it is: the dotted path of a bad or unknown
    key (`servers.nic_gbs`), or the line of a syntax error or a duplicate key.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _file_fault(f"cannot read {path}: {exc}") from exc
    suffix = path.suffix.lower()
    fmt: _Format | None = ("json" if suffix == ".json"
                           else "yaml" if suffix in (".yaml", ".yml") else None)
    return parse_whatif(text, fmt, source=str(path))


def parse_whatif(text: str, fmt: _Format | None = None, source: str = "what-if") -> WhatIf:
    """A what-if from text; `fmt` None guesses: JSON starts with `{`, anything else is YAML."""
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    doc = _parse_json(text, source) if fmt == "json" else _parse_yaml(text, source)
    if doc is None:
        raise _file_fault(f"{source} is empty: a what-if needs at least servers.count")
    if not isinstance(doc, dict):
        raise _file_fault(f"{source} must hold a mapping of what-if keys (servers, cameras, "
                          f"...), not a {type(doc).__name__}")
    try:
        return WhatIf.model_validate(doc)
    except ValidationError as exc:
        raise _invalid(source, _explained(exc)) from exc


def _file_fault(message: str) -> InvalidInput:
    return InvalidInput(message, [FieldError(_FILE, message)])


def _invalid(source: str, errors: list[FieldError]) -> InvalidInput:
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInput(f"{source}: {errors[0].field}: {errors[0].message}{more}", errors)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _file_fault(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}") from exc
    except _DuplicateKey as exc:
        # Python's JSON keeps the last of two equal keys; a what-if must not hide one.
        raise _file_fault(f"{source}: key {exc.args[0]!r} appears twice in one object") from exc


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
        duplicates: list[FieldError] = []
        _yaml_duplicates(root, "", duplicates, set())
        if duplicates:
            # PyYAML keeps the last of two equal keys; a what-if must not hide one.
            raise _invalid(source, duplicates)
        return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _file_fault(f"{source} is not valid YAML: {problem}{where}") from exc


def _yaml_duplicates(node: Any, path: str, out: list[FieldError], seen_nodes: set[int]) -> None:
    if node is None or id(node) in seen_nodes:  # aliases point at a node already walked
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            where = f"{path}.{key}" if path else key
            if key in keys:
                line = key_node.start_mark.line + 1
                out.append(FieldError(where, f"duplicate key (line {line})"))
            keys.add(key)
            _yaml_duplicates(value_node, where, out, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _yaml_duplicates(item, f"{path}.{index}", out, seen_nodes)


def _explained(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as FieldErrors; an unknown key gets the nearest known one suggested."""
    errors = field_errors(exc)
    for i, (err, raw) in enumerate(zip(errors, exc.errors(), strict=True)):
        if raw["type"] != "extra_forbidden" or not raw["loc"]:
            continue
        known = _keys_at(raw["loc"][:-1])
        close = difflib.get_close_matches(str(raw["loc"][-1]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
        errors[i] = FieldError(err.field, err.message + hint, err.row)
    return errors


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the what-if accepts at `loc` (list indices skipped)."""
    model: type[BaseModel] = WhatIf
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# --- from the registry -------------------------------------------------------------------------

def from_registry(conn: Connection, overrides: Mapping[str, Any] | None = None) -> WhatIf:
    """The what-if of the registry as it stands: its cameras, plate readers and servers.

    Active, planned and in-maintenance devices count (a camera under repair comes back and
    needs its share); retired ones do not. Planned devices are `new`, so priced. Devices alike
    in kind, picture, codec and bitrate form one group. A missing bitrate is estimated from
    resolution, fps and codec at medium activity; missing stream settings are assumed
    (`_ASSUMED_STREAM`); both are said in `notes`. Server limits, storage, retention and
    prices are the `WhatIf` defaults unless `overrides` gives them: what-if keys merged over
    the registry's figures (mappings merge key by key, other values replace).
    """
    rows = conn.execute(
        sa.select(devices.c.kind, devices.c.status, devices.c.width, devices.c.height,
                  devices.c.fps, devices.c.codec, devices.c.bitrate_kbps)
        .where(devices.c.status != DeviceStatus.RETIRED.value)
    ).mappings().all()

    servers = 0
    groups: Counter[tuple[str, bool, int, int, float, str, int | None, bool]] = Counter()
    assumed = estimated = 0
    for row in rows:
        kind = str(row["kind"])
        if kind == DeviceKind.RECORDING_SERVER.value:
            servers += 1
            continue
        if kind not in _ASSUMED_STREAM:
            continue
        stream = (row["width"], row["height"], row["fps"], row["codec"])
        missing = any(v is None for v in stream)
        width, height, fps, codec = _ASSUMED_STREAM[kind] if missing else stream
        assumed += missing
        estimated += row["bitrate_kbps"] is None
        planned = row["status"] == DeviceStatus.PLANNED.value
        groups[(kind, planned, int(width), int(height), float(fps), str(codec),
                row["bitrate_kbps"], missing)] += 1

    cameras: list[dict[str, Any]] = []
    readers: list[dict[str, Any]] = []
    for (kind, planned, width, height, fps, codec, kbps, missing), count in sorted(
            groups.items(), key=lambda item: tuple(str(part) for part in item[0])):
        label = f"{kind} {width}x{height} {fps:g}fps {codec}"
        if kbps is not None:
            label += f" {kbps} kbps"
        else:
            label += " bitrate estimated"
        label += " (stream data assumed)" if missing else ""
        label += " planned" if planned else ""
        if kind == DeviceKind.PLATE_READER.value:
            if kbps is None:
                kbps = estimate_bitrate_kbps(width, height, fps, Codec(codec), Activity.MEDIUM)
            readers.append({"name": label, "count": count, "bitrate_kbps": kbps, "new": planned})
        else:
            group: dict[str, Any] = {"name": label, "count": count, "width": width,
                                     "height": height, "fps": fps, "codec": codec,
                                     "new": planned}
            if kbps is None:
                group["activity"] = Activity.MEDIUM.value
            else:
                group["bitrate_kbps"] = kbps
            cameras.append(group)

    n_cameras = sum(g["count"] for g in cameras)
    n_readers = sum(g["count"] for g in readers)
    notes = [f"from the registry: {n_cameras} cameras, {n_readers} plate readers, {servers} "
             "recording servers (active, planned and in maintenance; retired left out)"]
    if assumed:
        notes.append(f"{assumed} device(s) have no resolution, fps or codec in the registry: "
                     "assumed 1920x1080 25 fps H.264 (cameras), 1280x720 25 fps H.264 "
                     "(plate readers)")
    if estimated:
        notes.append(f"{estimated} device(s) have no bitrate in the registry: estimated from "
                     "resolution, fps and codec at medium activity (rule of thumb)")
    doc: dict[str, Any] = {"name": "registry", "notes": notes, "cameras": cameras,
                           "plate_readers": readers, "servers": {"count": servers}}
    try:
        return WhatIf.model_validate(_merged(doc, overrides or {}))
    except ValidationError as exc:
        raise _invalid("overrides", _explained(exc)) from exc


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# --- for people --------------------------------------------------------------------------------

def _num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _eur(x: float | None) -> str:
    return "no price" if x is None else f"EUR {x:,.0f}"


def render_table(plan: CapacityPlan) -> str:
    """The plan as a text table for the control room (English / Italiano)."""
    p = plan
    mode = p.recording_mode.value
    rows = [
        ("Devices / Dispositivi", f"{p.cameras} cameras + {p.plate_readers} plate readers "
                                  f"= {p.streams} streams"),
        ("Ingest / Banda in ingresso", f"{_num(p.ingest_mbps)} Mbit/s total"
         + (f", {_num(p.ingest_mbps_per_server)} Mbit/s per working server"
            if p.ingest_mbps_per_server is not None else "")),
        ("Recorded / Registrato", f"{_num(p.recorded_mbps)} Mbit/s on average ({mode})"),
        ("Retention / Conservazione", f"{p.retention_days} days"),
        ("Video / Dati video", f"{_num(p.storage_tb_usable_needed, 2)} TB"),
        ("Filesystem (with headroom)", f"{_num(p.storage_tb_filesystem, 2)} TB"),
        ("Array (with fs overhead)", f"{_num(p.storage_tb_array, 2)} TB"),
        ("Raw / Capacità grezza", f"{_num(p.storage_tb_raw, 2)} TB after RAID {p.raid}"),
        ("Disks / Dischi", f"{p.disks_needed} x {p.disk_tb:g} TB needed (groups of "
                           f"{p.disks_per_group}); installed {p.disks_installed}"
         + (f" = {p.disks_per_server} per server x {p.servers_in_plan}"
            if p.disks_per_server is not None else "")),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"Capacity plan / Piano di capacità: {p.name or 'what-if'}", ""]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]

    head = ("Constraint / Vincolo", "Load / Carico", "Per server", "Needed", "Use", "Margin")
    table = [head]
    for m in p.constraints:
        digits = 0 if m.unit == "streams" else 1
        used = "-" if m.utilisation_pct is None else f"{m.utilisation_pct:.1f} %"
        table.append((m.label + (" *" if m.constraint == p.binding_constraint else ""),
                      f"{_num(m.load, digits)} {m.unit}",
                      f"{_num(m.capacity_per_server, digits)} {m.unit}",
                      str(m.servers_needed), used, f"{m.headroom_servers:+d}"))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines.append("")
    for r in table:
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)).rstrip())
    lines.append("* binding constraint / vincolo determinante; Use: load over the available "
                 "working servers; Margin: working servers beyond the need")

    verdict = "YES / SÌ" if p.sufficient else "NO"
    spare = f" + {p.spare_servers} N+1 spare" if p.spare_servers else ""
    lines += ["", f"Servers needed / Server necessari: {p.servers_needed} "
                  f"({p.servers_needed_working} working{spare})",
              f"Available / Disponibili: {p.servers_available} -> enough / sufficienti? "
              f"{verdict}, margin {p.margin_servers:+d} server(s)"]
    if p.cost is not None:
        c = p.cost
        lines += ["", "Cost, indicative / Costo indicativo:",
                  f"  servers {_eur(c.servers_eur)}, disks {_eur(c.disks_eur)}, "
                  f"cameras {_eur(c.cameras_eur)}, plate readers {_eur(c.plate_readers_eur)}",
                  f"  total {_eur(c.total_eur)} (hardware only, VAT excluded)"]
    if p.warnings:
        lines += ["", "Warnings / Avvisi:"] + [f"  - {w}" for w in p.warnings]
    if p.notes:
        lines += ["", "Notes / Note:"] + [f"  - {n}" for n in p.notes]
    return "\n".join(lines) + "\n"
