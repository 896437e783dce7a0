"""Investigative search over transits: always with a purpose, audited, inside the user's zones.

Thin calls into vigila.reads.search; each opens a write transaction for its audit entry.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BeforeValidator, StringConstraints

from vigila.access import Permission
from vigila.api.deps import Consultation, Installation, consultation, installation
from vigila.core import InvalidInput
from vigila.core.pagination import Page
from vigila.core.text import NoNul
from vigila.reads import search
from vigila.reads.models import ReadDirection
from vigila.reads.search_models import (
    MAX_FILTER_IDS,
    Convoy,
    FoundTransit,
    PlateRoute,
    TransitQuery,
)

router = APIRouter(prefix="/api", tags=["transits"])
PlateText = Annotated[str, Query(max_length=64), NoNul]
PlatePath = Annotated[str, Path(min_length=1, max_length=64), StringConstraints(max_length=64),
                      NoNul]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]


def _not_a_number(value: object) -> object:
    # pydantic reads "0" as the Unix epoch; the document promises ISO 8601 with an offset,
    # and an investigator's "until=0" is a typo, not 1970.
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("an ISO 8601 time with a UTC offset, e.g. 2026-01-31T08:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
Since = Annotated[Instant | None, Query(
    description="from this instant (inclusive, with a UTC offset); default: a day before until")]
Until = Annotated[Instant | None, Query(
    description="to this instant (exclusive, with a UTC offset); default: now")]
Search = consultation(Permission.READS_SEARCH)


_SCALARS = ("plate", "pattern", "fuzzy", "since", "until", "direction", "limit", "cursor")


class GeoJSONResponse(JSONResponse):
    media_type = "application/geo+json"


@router.get("/transits", response_model=Page[FoundTransit],
            summary="Search transits by plate, pattern or look-alike (purpose; audited)")
def search_transits(
    request: Request,
    plate: Annotated[PlateText | None, Query(description="exact plate, any separators")] = None,
    pattern: Annotated[PlateText | None, Query(
        description="? one character, * any run, e.g. AB?12*; without a leading letter or "
                    "digit, since and until at most 7 days apart")] = None,
    fuzzy: Annotated[bool, Query(
        description="with plate: also plates one look-alike substitution away (8/B, 0/O...)"
    )] = False,
    since: Since = None,
    until: Until = None,
    device: Annotated[list[Ref] | None, Query(
        max_length=MAX_FILTER_IDS, description="only these readers (repeat)")] = None,
    zone: Annotated[list[Ref] | None, Query(
        max_length=MAX_FILTER_IDS, description="only readers in these zones (repeat)")] = None,
    direction: ReadDirection | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    c: Consultation = Depends(Search),
    inst: Installation = Depends(installation),
) -> Page[FoundTransit]:
    """Newest first; exactly one of plate and pattern."""
    for name in _SCALARS:  # ?pattern=A*&pattern=B* would silently search only one of them
        if len(request.query_params.getlist(name)) > 1:
            raise InvalidInput.on(name, "give it once (only device and zone repeat)")
    query = TransitQuery(plate=plate, pattern=pattern, fuzzy=fuzzy, since=since, until=until,
                         devices=tuple(device or ()), zones=tuple(zone or ()),
                         direction=direction, limit=limit, cursor=cursor)
    with inst.db.write() as conn:
        return search.search_transits(conn, c.who, c.why, query)


@router.get("/transits/{transit_id}", response_model=FoundTransit,
            summary="One transit (purpose; audited); outside your zones it is not found")
def get_transit(transit_id: UUID, c: Consultation = Depends(Search),
                inst: Installation = Depends(installation)) -> FoundTransit:
    with inst.db.write() as conn:
        return search.get_transit(conn, c.who, c.why, transit_id)


@router.get("/plates/{plate}/route", response_model=PlateRoute,
            response_class=GeoJSONResponse,
            summary="A plate's route: its transits in time order as GeoJSON (purpose; audited)")
def plate_route(plate: PlatePath, since: Since = None, until: Until = None,
                c: Consultation = Depends(Search),
                inst: Installation = Depends(installation)) -> PlateRoute:
    with inst.db.write() as conn:
        return search.plate_route(conn, c.who, c.why, plate, since, until)


@router.get("/plates/{plate}/convoy", response_model=Convoy,
            summary="Plates seen with this one at several readers (purpose; audited)")
def plate_convoy(
    plate: PlatePath, since: Since = None, until: Until = None,
    window_seconds: Annotated[int, Query(
        ge=1, le=search.MAX_WINDOW_SECONDS,
        description="seconds either side of each of the plate's transits")] = 60,
    min_readers: Annotated[int, Query(
        ge=2, le=search.MAX_MIN_READERS,
        description="distinct readers a companion must share")] = 3,
    c: Consultation = Depends(Search),
    inst: Installation = Depends(installation),
) -> Convoy:
    with inst.db.write() as conn:
        return search.convoy(conn, c.who, c.why, plate, since=since, until=until,
                             window_seconds=window_seconds, min_readers=min_readers)
