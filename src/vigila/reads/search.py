"""Investigative search over transits: with a purpose, audited, inside the user's zones.

Every function here needs reads.search, takes the purpose of the consultation, and
records one audit entry in the caller's write transaction (D.Lgs. 51/2018 art. 21).
Only transits at readers in the user's zones are seen (art. 25): a transit elsewhere
reads as not found, a reader elsewhere yields nothing.

Time ranges are [since, until): `until` defaults to now, `since` to a day before
`until`. An older `since` may be given, but transits that matched nothing are gone
after a day anyway (minimisation); what is older is hits kept with their alarms.

Each query is served by an index (tests/reads_search checks the plans). Transits have one
plate index, ix_transits_plate_key_time on the look-alike key (see `vigila.plates.lookalike`):
a second one on the plate itself doubled the cost of an insert on a loaded database, since
each lands on a random page of each (at a million transits in SQLite, 1,000 rows took 83 ms
with both indexes, 43 with one). The key maps each character to its class's
representative, so it narrows every plate query nearly as well as the plate would:
- exact plate: plate_key = key(plate) AND plate = plate AND time range;
- pattern with a literal prefix ('AB?12*'): key(prefix) as a range on plate_key, then
  LIKE. A range, because SQLite's LIKE ignores case and cannot use an index, and because
  a range orders alike in every collation: keys are A-Z0-9 only;
- pattern that starts with a wildcard ('?B12*'): no plate index can help, so the time
  range must be at most `MAX_SCAN_SPAN` and ix_transits_time bounds the scan;
- look-alike: plate_key = key(plate), then the distance in Python;
- route: as exact; convoy: the target's transits as exact, then each reader's
  neighbours by ix_transits_device_id_time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from vigila.access import audit
from vigila.access.principal import Principal, Purpose
from vigila.access.roles import Permission
from vigila.core.errors import InvalidInput, NotFound
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.timeutil import as_utc, iso, parse_instant, utc_instant, utcnow
from vigila.plates import (
    lookalike_distance,
    lookalike_key,
    normalise,
    normalise_pattern,
    wildcard_to_like,
)
from vigila.reads.search_models import (
    Companion,
    Convoy,
    FoundTransit,
    LineStringGeometry,
    PlateRoute,
    PointGeometry,
    RouteLine,
    RouteLineProperties,
    Sighting,
    TransitPoint,
    TransitPointProperties,
    TransitQuery,
)
from vigila.reads.tables import transits
from vigila.registry.tables import devices

DEFAULT_SPAN = timedelta(hours=24)
MAX_SCAN_SPAN = timedelta(days=7)  # a pattern with no literal prefix reads every transit
FUZZY_MAX_DISTANCE = 1
FUZZY_EXAMINED_PER_ITEM = 20  # rows read per item asked before a short page is returned
MAX_ROUTE_TRANSITS = 5000
MAX_CONVOY_TARGETS = 500
MAX_WINDOW_SECONDS = 3600
MAX_MIN_READERS = 100
AUDITED_PLATES = 200  # plates of others named in one audit entry, at most

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the canonical plate text, in byte order
_WILDCARDS = "?*"

t = transits.c
d = devices.c
_FROM = transits.join(devices, devices.c.id == transits.c.device_id)
_TRANSIT_COLUMNS = (
    t.id, t.device_id, t.plate, t.plate_raw, t.format_id, t.country, t.confidence, t.time,
    t.received_at, t.direction, t.lane, t.event_id, t.vendor, t.flags, t.hit,
    t.plate_image_sha256, t.context_image_sha256,
    d.name.label("device_name"), d.zone_id,
)


# --- time ------------------------------------------------------------------------------

def time_span(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC, with the defaults: until now, since a day before until."""
    end = utc_instant(until, "until") if until is not None else utcnow()
    start = utc_instant(since, "since") if since is not None else _shift(end, -DEFAULT_SPAN)
    if start >= end:
        raise InvalidInput.on("since", "must be before until")
    return start, end


def _shift(value: datetime, delta: timedelta) -> datetime:
    """value + delta, held at the ends of the calendar rather than overflowing."""
    try:
        return value + delta
    except OverflowError:
        return (datetime.min if delta < timedelta(0) else datetime.max).replace(tzinfo=UTC)


# --- the plate criterion ---------------------------------------------------------------

def literal_prefix(pattern: str) -> str:
    """The letters and digits a normalised pattern starts with: 'AB?12*' → 'AB'."""
    for i, ch in enumerate(pattern):
        if ch in _WILDCARDS:
            return pattern[:i]
    return pattern


def prefix_upper(prefix: str) -> str | None:
    """The least canonical text above every text starting with `prefix` ('AB9' → 'ABA',
    'AZ' → 'B'); None when there is none ('ZZ')."""
    chars = list(prefix)
    while chars:
        i = _ALPHABET.index(chars[-1])
        if i + 1 < len(_ALPHABET):
            chars[-1] = _ALPHABET[i + 1]
            return "".join(chars)
        chars.pop()
    return None


def _criterion(query: TransitQuery,
               dialect: str = "postgresql") -> tuple[list[sa.ColumnElement[bool]], bool]:
    """The WHERE terms on the plate, and whether they leave a scan (no plate index)."""
    if (query.plate is None) == (query.pattern is None):
        raise InvalidInput.on("plate", "give exactly one of plate and pattern")
    if query.pattern is not None:
        if query.fuzzy:
            raise InvalidInput.on("fuzzy", "look-alike search takes a plate, not a pattern")
        text = normalise_pattern(query.pattern)
        if not any(ch in _WILDCARDS for ch in text):
            return _exact(text), False
        terms: list[sa.ColumnElement[bool]] = [t.plate.like(wildcard_to_like(text), escape="\\")]
        prefix = literal_prefix(text)
        if prefix:
            prefix = lookalike_key(prefix)
            lower = t.plate_key >= prefix
            if dialect == "sqlite":
                # Without histograms SQLite rates a key range no better than the time
                # range, and takes the time index to skip the sort: tell it the prefix is
                # selective. It still drives ix_transits_plate_key_time.
                lower = sa.func.likelihood(lower, sa.literal_column("0.001"))
            terms.append(lower)
            upper = prefix_upper(prefix)
            if upper is not None:
                terms.append(t.plate_key < upper)
        return terms, not prefix
    plate = normalise(query.plate or "")
    if query.fuzzy:
        return [t.plate_key == lookalike_key(plate)], False
    return _exact(plate), False


def _exact(plate: str) -> list[sa.ColumnElement[bool]]:
    """One plate (normalised): its key drives the index, the plate itself filters."""
    return [t.plate_key == lookalike_key(plate), t.plate == plate]


# --- search ----------------------------------------------------------------------------

Position = tuple[datetime, UUID]  # (time, id) of a transit: the order of a result list


def search_statement(who: Principal, query: TransitQuery, since: datetime, until: datetime,
                     *, dialect: str, after: Position | None = None,
                     limit: int | None = None) -> sa.Select[Any]:
    """The SELECT of a search on `dialect`, newest first, after `after` (exposed for
    EXPLAIN)."""
    terms, _ = _criterion(query, dialect)
    stmt = sa.select(*_TRANSIT_COLUMNS).select_from(_FROM).where(
        *terms, t.time >= since, t.time < until, who.zone_clause(d.zone_id))
    if query.devices:
        stmt = stmt.where(t.device_id.in_(sorted(set(query.devices))))
    if query.zones:
        stmt = stmt.where(d.zone_id.in_(sorted(set(query.zones))))
    if query.direction is not None:
        stmt = stmt.where(t.direction == query.direction.value)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(t.time <= at, sa.or_(t.time < at, t.id < last_id))
    stmt = stmt.order_by(t.time.desc(), t.id.desc())
    return stmt if limit is None else stmt.limit(limit)


def search_transits(conn: Connection, who: Principal, why: Purpose,
                    query: TransitQuery) -> Page[FoundTransit]:
    """A page of the transits matching `query`, newest first; audited with the purpose."""
    who.require(Permission.READS_SEARCH)
    check_limit(query.limit)
    since, until = time_span(query.since, query.until)
    _, scan = _criterion(query)
    if scan and until - since > MAX_SCAN_SPAN:
        raise InvalidInput.on(
            "since", f"a pattern that starts with a wildcard reads every transit in the range: "
            f"give since and until at most {MAX_SCAN_SPAN.days} days apart, or start the "
            "pattern with a letter or digit")
    after = _decode_position(query.cursor)
    target = normalise(query.plate) if query.fuzzy and query.plate is not None else None

    batch = query.limit + 1
    budget = batch * (FUZZY_EXAMINED_PER_ITEM if target is not None else 1)
    items: list[FoundTransit] = []
    position, examined, exhausted = after, 0, False
    while len(items) <= query.limit and examined < budget:
        rows = list(conn.execute(search_statement(
            who, query, since, until, dialect=conn.dialect.name, after=position,
            limit=min(batch, budget - examined))).mappings())
        exhausted = len(rows) < min(batch, budget - examined)
        for row in rows:
            examined += 1
            position = (as_utc(row["time"]), row["id"])
            distance = None
            if target is not None:
                distance = lookalike_distance(target, row["plate"])
                if distance is None or distance > FUZZY_MAX_DISTANCE:
                    continue
            items.append(_found(row, distance))
            if len(items) > query.limit:
                break
        if exhausted or target is None:
            break

    next_cursor = None
    if len(items) > query.limit:
        items = items[:query.limit]
        next_cursor = _encode_position((items[-1].time, items[-1].id))
    elif not exhausted and position is not None and position != after:
        next_cursor = _encode_position(position)  # a look-alike page cut short: go on from here

    detail = _query_detail(query, since, until)
    detail["returned"] = len(items)
    if query.pattern is not None or query.fuzzy:  # plates the searcher did not name
        detail["plates"] = sorted({i.plate for i in items})[:AUDITED_PLATES]
    audit.record(conn, who, "transits.search", "transits", purpose=why, detail=detail)
    return Page(items=items, next_cursor=next_cursor)


def get_transit(conn: Connection, who: Principal, why: Purpose, transit_id: UUID) -> FoundTransit:
    """One transit by id, if its reader is in the user's zones; audited with the purpose."""
    who.require(Permission.READS_SEARCH)
    row = conn.execute(sa.select(*_TRANSIT_COLUMNS).select_from(_FROM).where(
        t.id == transit_id, who.zone_clause(d.zone_id))).mappings().first()
    if row is None:
        raise NotFound(f"no transit {transit_id}")
    found = _found(row, None)
    audit.record(conn, who, "transits.read", f"transit/{transit_id}", purpose=why,
                 detail={"plate": found.plate, "device_id": found.device_id,
                         "time": iso(found.time)})
    return found


def _found(row: RowMapping, distance: int | None) -> FoundTransit:
    values = dict(row)
    values["flags"] = [f for f in (values["flags"] or "").split(",") if f]
    values["distance"] = distance
    return FoundTransit.model_validate(values)


def _encode_position(position: Position) -> str:
    at, transit_id = position
    return encode_cursor(f"{iso(at)}~{transit_id.hex}")


def _decode_position(cursor: str | None) -> Position | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    try:
        if not isinstance(key, str):
            raise ValueError(key)
        at, _, hex_id = key.partition("~")
        return parse_instant(at), UUID(hex=hex_id)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput.on("cursor", "not a cursor of a transit search") from exc


def _query_detail(query: TransitQuery, since: datetime, until: datetime) -> dict[str, Any]:
    return {
        "plate": None if query.plate is None else normalise(query.plate),
        "pattern": None if query.pattern is None else normalise_pattern(query.pattern),
        "fuzzy": query.fuzzy, "since": iso(since), "until": iso(until),
        "devices": sorted(set(query.devices)), "zones": sorted(set(query.zones)),
        "direction": None if query.direction is None else query.direction.value,
        "limit": query.limit, "cursor": query.cursor,
    }


# --- route -----------------------------------------------------------------------------

def plate_route(conn: Connection, who: Principal, why: Purpose, plate: str,
                since: datetime | None = None, until: datetime | None = None) -> PlateRoute:
    """A plate's transits in [since, until) in time order, as GeoJSON; audited."""
    who.require(Permission.READS_SEARCH)
    text = normalise(plate)
    start, end = time_span(since, until)
    rows = list(conn.execute(
        sa.select(t.id, t.time, t.device_id, t.direction, d.name, d.zone_id, d.lat, d.lon)
        .select_from(_FROM)
        .where(*_exact(text), t.time >= start, t.time < end, who.zone_clause(d.zone_id))
        .order_by(t.time, t.id).limit(MAX_ROUTE_TRANSITS + 1)).mappings())
    if len(rows) > MAX_ROUTE_TRANSITS:
        raise InvalidInput.on("since", f"{text} has more than {MAX_ROUTE_TRANSITS} transits "
                              "in the range: narrow since and until")
    features: list[TransitPoint | RouteLine] = [
        TransitPoint(
            id=str(row["id"]),
            geometry=PointGeometry(coordinates=(row["lon"], row["lat"])),
            properties=TransitPointProperties.model_validate({
                "seq": seq, "transit_id": row["id"], "time": row["time"],
                "device_id": row["device_id"], "device_name": row["name"],
                "zone_id": row["zone_id"], "direction": row["direction"]}))
        for seq, row in enumerate(rows, 1)
    ]
    if len(rows) >= 2:  # a LineString has two positions or more (RFC 7946 3.1.4)
        features.append(RouteLine(
            geometry=LineStringGeometry(coordinates=[(r["lon"], r["lat"]) for r in rows]),
            properties=RouteLineProperties(plate=text, transits=len(rows),
                                           first=rows[0]["time"], last=rows[-1]["time"])))
    audit.record(conn, who, "plates.route", f"plate/{text}", purpose=why,
                 detail={"plate": text, "since": iso(start), "until": iso(end),
                         "transits": len(rows)})
    return PlateRoute(plate=text, since=start, until=end, features=features)


# --- convoy ----------------------------------------------------------------------------

def convoy(conn: Connection, who: Principal, why: Purpose, plate: str, *,
           since: datetime | None = None, until: datetime | None = None,
           window_seconds: int = 60, min_readers: int = 3) -> Convoy:
    """The plates seen within ±window_seconds of `plate` at `min_readers` readers or more.

    For each reader the target passed, the other transits there in the windows around
    its passages are read by (device_id, time); a companion counts each reader once.
    Audited with the plates it names, which are other people's.
    """
    who.require(Permission.READS_SEARCH)
    text = normalise(plate)
    if not 1 <= window_seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput.on("window_seconds", f"between 1 and {MAX_WINDOW_SECONDS} seconds")
    if not 2 <= min_readers <= MAX_MIN_READERS:
        raise InvalidInput.on("min_readers", f"between 2 and {MAX_MIN_READERS}: a convoy is "
                              "seen together at more than one reader")
    start, end = time_span(since, until)
    targets = list(conn.execute(
        sa.select(t.id, t.time, t.device_id, d.name).select_from(_FROM)
        .where(*_exact(text), t.time >= start, t.time < end, who.zone_clause(d.zone_id))
        .order_by(t.time, t.id).limit(MAX_CONVOY_TARGETS + 1)).mappings())
    if len(targets) > MAX_CONVOY_TARGETS:
        raise InvalidInput.on("since", f"{text} has more than {MAX_CONVOY_TARGETS} transits "
                              "in the range: narrow since and until")
    window = timedelta(seconds=window_seconds)
    at_reader: dict[str, list[RowMapping]] = defaultdict(list)
    for row in targets:
        at_reader[row["device_id"]].append(row)

    # companion plate -> its transit id -> the sighting (nearest passage of the target)
    seen: dict[str, dict[UUID, Sighting]] = defaultdict(dict)
    for device_id, passages in at_reader.items():
        times = [as_utc(p["time"]) for p in passages]
        for lo, hi in _merged_windows(times, window):
            neighbours = conn.execute(
                sa.select(t.id, t.plate, t.time).where(
                    t.device_id == device_id, t.time >= lo, t.time <= hi, t.plate != text))
            for other in neighbours.mappings():
                passage = _nearest(passages, times, as_utc(other["time"]))
                offset = as_utc(other["time"]) - as_utc(passage["time"])
                if abs(offset) > window:
                    continue
                seen[other["plate"]][other["id"]] = Sighting(
                    transit_id=other["id"], device_id=device_id,
                    device_name=passage["name"], time=other["time"],
                    target_transit_id=passage["id"], target_time=passage["time"],
                    offset_seconds=offset.total_seconds())

    companions = []
    for other_plate, sightings in seen.items():
        readers = len({s.device_id for s in sightings.values()})
        if readers >= min_readers:
            companions.append(Companion(plate=other_plate, readers=readers, sightings=sorted(
                sightings.values(), key=lambda s: (s.time, s.transit_id))))
    companions.sort(key=lambda c: (-c.readers, -len(c.sightings), c.plate))

    audit.record(conn, who, "plates.convoy", f"plate/{text}", purpose=why, detail={
        "plate": text, "since": iso(start), "until": iso(end),
        "window_seconds": window_seconds, "min_readers": min_readers,
        "target_transits": len(targets), "companions": len(companions),
        "plates": [c.plate for c in companions[:AUDITED_PLATES]]})
    return Convoy(plate=text, since=start, until=end, window_seconds=window_seconds,
                  min_readers=min_readers, target_transits=len(targets),
                  target_readers=len(at_reader), companions=companions)


def _merged_windows(times: Iterable[datetime],
                    window: timedelta) -> list[tuple[datetime, datetime]]:
    """[t - window, t + window] for each time (sorted), overlapping ones merged: one
    query per stretch of a reader's timeline, not one per passage."""
    merged: list[tuple[datetime, datetime]] = []
    for at in times:
        lo, hi = _shift(at, -window), _shift(at, window)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _nearest(passages: Sequence[RowMapping], times: Sequence[datetime],
             at: datetime) -> RowMapping:
    i = bisect_left(times, at)
    if i == 0:
        return passages[0]
    if i == len(times):
        return passages[-1]
    return passages[i] if times[i] - at < at - times[i - 1] else passages[i - 1]
