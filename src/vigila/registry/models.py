"""What the registry accepts and returns; one definition for API, CLI and import."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigila.core.text import NoNul

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
# Device ids end up in recording paths: letters, digits, dot, dash, underscore only.
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                 NoNul]


class AgencyKind(StrEnum):
    POLIZIA_LOCALE = "polizia_locale"
    POLIZIA_DI_STATO = "polizia_di_stato"
    CARABINIERI = "carabinieri"
    GUARDIA_DI_FINANZA = "guardia_di_finanza"
    AUTORITA_GIUDIZIARIA = "autorita_giudiziaria"
    OTHER = "other"


class ZoneKind(StrEnum):
    CENTRE = "centre"
    PERIPHERY = "periphery"
    SENSITIVE = "sensitive"
    SCHOOL = "school"
    GATE = "gate"
    OTHER = "other"


class DeviceKind(StrEnum):
    CAMERA = "camera"
    PLATE_READER = "plate_reader"
    CAMERA_ANPR = "camera_anpr"  # a camera that also reads plates
    RECORDING_SERVER = "recording_server"


PLATE_READING = {DeviceKind.PLATE_READER, DeviceKind.CAMERA_ANPR}


class DeviceStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class Codec(StrEnum):
    H264 = "h264"
    H265 = "h265"
    MJPEG = "mjpeg"


class AnprVendor(StrEnum):
    GENERIC = "generic"
    HIKVISION = "hikvision"
    TATTILE = "tattile"
    VIGILA = "vigila"  # a camera_anpr read by Vigila's own engine from its stream
    OTHER = "other"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgencyIn(Strict):
    id: Slug
    name: Name
    kind: AgencyKind


class AgencyPatch(Strict):
    name: Name | None = None
    kind: AgencyKind | None = None


class Agency(BaseModel):
    id: str
    name: str
    kind: AgencyKind
    created_at: datetime
    updated_at: datetime


class ZoneIn(Strict):
    id: Slug
    name: Name
    kind: ZoneKind
    geometry: dict[str, Any] = Field(
        description="GeoJSON Polygon or MultiPolygon in WGS 84 (lon, lat)"
    )


class ZonePatch(Strict):
    name: Name | None = None
    kind: ZoneKind | None = None
    geometry: dict[str, Any] | None = None


class Zone(BaseModel):
    id: str
    name: str
    kind: ZoneKind
    geometry: dict[str, Any]
    created_at: datetime
    updated_at: datetime


Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Heading = Annotated[float, Field(ge=0, lt=360, allow_inf_nan=False)]
Url = Annotated[str, StringConstraints(max_length=1024, strip_whitespace=True), NoNul]
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


class DeviceFields(Strict):
    """Every settable field; all optional here, so a patch can name any subset."""

    name: Name | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    heading: Heading | None = None
    zone_id: Slug | None = None
    agency_id: Slug | None = None
    main_stream_url: Url | None = None
    sub_stream_url: Url | None = None
    codec: Codec | None = None
    width: Annotated[int, Field(ge=16, le=16384)] | None = None
    height: Annotated[int, Field(ge=16, le=16384)] | None = None
    fps: Annotated[float, Field(gt=0, le=240, allow_inf_nan=False)] | None = None
    bitrate_kbps: Annotated[int, Field(ge=16, le=1_000_000)] | None = None
    anpr_vendor: AnprVendor | None = None
    lane: Annotated[int, Field(ge=1, le=16)] | None = None
    direction: Direction | None = None
    recording_server_id: DeviceId | None = None
    address: Annotated[str, StringConstraints(max_length=255, strip_whitespace=True),
                       NoNul] | None = None
    installed_on: date | None = None
    status: DeviceStatus | None = None
    notes: Annotated[str, StringConstraints(max_length=4000), NoNul] | None = None

    @field_validator("main_stream_url", "sub_stream_url")
    @classmethod
    def _stream_scheme(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(STREAM_SCHEMES):
            raise ValueError("must be an rtsp://, rtsps://, http:// or https:// URL")
        if value and any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        return value or None


class DevicePatch(DeviceFields):
    pass


class DeviceIn(DeviceFields):
    id: DeviceId
    kind: DeviceKind
    name: Name
    lat: Lat
    lon: Lon
    agency_id: Slug
    status: DeviceStatus = DeviceStatus.ACTIVE


class Device(BaseModel):
    id: str
    kind: DeviceKind
    name: str
    lat: float
    lon: float
    heading: float | None
    zone_id: str | None
    agency_id: str
    main_stream_url: str | None
    sub_stream_url: str | None
    codec: Codec | None
    width: int | None
    height: int | None
    fps: float | None
    bitrate_kbps: int | None
    anpr_vendor: AnprVendor | None
    lane: int | None
    direction: Direction | None
    recording_server_id: str | None
    address: str | None
    installed_on: date | None
    status: DeviceStatus
    notes: str | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None


# Column order of the CSV exchange format.
DEVICE_COLUMNS: tuple[str, ...] = ("id", "kind", *DeviceFields.model_fields.keys())


class ImportReport(BaseModel):
    rows: int
    imported: int
    rejected: int
    committed: bool
    errors: list[dict[str, Any]]
