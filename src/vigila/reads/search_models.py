"""The shapes of investigative search over transits: the query and what it answers.

A route is GeoJSON (RFC 7946): one Point per transit in time order, then the LineString
through them. A convoy is the plates seen with a target plate at several readers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigila.core.text import NoNul
from vigila.reads.models import ReadDirection, Transit

Ref = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
MAX_FILTER_IDS = 100  # readers or zones in one search


class TransitQuery(BaseModel):
    """One search: exactly one of `plate` (exact, or look-alike with `fuzzy`) and `pattern`.

    `until` defaults to now and `since` to a day before `until` (see vigila.reads.search).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    plate: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    pattern: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    fuzzy: bool = False
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    devices: Annotated[tuple[Ref, ...], Field(max_length=MAX_FILTER_IDS)] = ()
    zones: Annotated[tuple[Ref, ...], Field(max_length=MAX_FILTER_IDS)] = ()
    direction: ReadDirection | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None


class FoundTransit(Transit):
    """A transit as search shows it: with its reader's name and zone."""

    device_name: str
    zone_id: str | None
    distance: int | None = Field(
        default=None, description="look-alike substitutions from the plate searched (fuzzy only)")


# --- route (GeoJSON) -------------------------------------------------------------------

Position = tuple[float, float]  # [lon, lat], WGS 84, as GeoJSON orders them


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: Position


class LineStringGeometry(BaseModel):
    type: Literal["LineString"] = "LineString"
    coordinates: list[Position]


class TransitPointProperties(BaseModel):
    kind: Literal["transit"] = "transit"
    seq: int = Field(description="1 for the first transit in time")
    transit_id: UUID
    time: datetime
    device_id: str
    device_name: str
    zone_id: str | None
    direction: ReadDirection | None


class TransitPoint(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: TransitPointProperties


class RouteLineProperties(BaseModel):
    kind: Literal["route"] = "route"
    plate: str
    transits: int
    first: datetime
    last: datetime


class RouteLine(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: LineStringGeometry
    properties: RouteLineProperties


class PlateRoute(BaseModel):
    """A FeatureCollection; `plate`, `since`, `until` are foreign members (RFC 7946 6.1)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    plate: str
    since: datetime
    until: datetime
    features: list[TransitPoint | RouteLine] = Field(
        description="a Point per transit in time order, then the LineString (two or more)")


# --- convoy ----------------------------------------------------------------------------

class Sighting(BaseModel):
    """A companion's transit at a reader, near in time to the target's transit there."""

    transit_id: UUID
    device_id: str
    device_name: str
    time: datetime
    target_transit_id: UUID
    target_time: datetime
    offset_seconds: float = Field(description="the companion's time minus the target's")


class Companion(BaseModel):
    plate: str
    readers: int = Field(description="distinct readers where it was seen with the target")
    sightings: list[Sighting]


class Convoy(BaseModel):
    plate: str
    since: datetime
    until: datetime
    window_seconds: int
    min_readers: int
    target_transits: int
    target_readers: int
    companions: list[Companion] = Field(description="most readers first")
