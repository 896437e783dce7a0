"""Deterministic generator of a fictional sample city for demos and tests.

The city is *modelled on* Prato (Tuscany): the walled centre, a few districts,
schools and the roads that lead into town give the data a realistic shape.
Everything else -- positions, device inventory, addresses, dates, owners -- is
invented.  Nothing here describes a real surveillance installation.

Dati illustrativi: città di esempio, non corrisponde a impianti reali.

Only the standard library is used, and every random choice goes through one
``random.Random(seed)`` so the same seed always yields an equal ``SampleCity``.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, TypeAlias

__all__ = [
    "CENTER_LAT",
    "CENTER_LON",
    "NOTICE",
    "SampleCity",
    "point_in_polygon",
    "sample_city",
]

NOTICE: Final[str] = (
    "Dati illustrativi: città di esempio, non corrisponde a impianti reali / "
    "Illustrative data: not a real installation"
)

CENTER_LAT: Final[float] = 43.8800
CENTER_LON: Final[float] = 11.0970

# Local flat-earth projection: error is centimetres over a 10 km city.
_M_PER_DEG_LAT: Final[float] = 111_320.0
_M_PER_DEG_LON: Final[float] = _M_PER_DEG_LAT * math.cos(math.radians(CENTER_LAT))

_RTSP_BASE: Final[str] = "rtsp://127.0.0.1:8554"
_SLUG_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

# Counts fixed by the brief; the generator asserts them at the end.
_TOTAL_DEVICES: Final[int] = 320
_NEW_CAMERAS: Final[int] = 88
_PAIRED_GATES: Final[int] = 12
_OUTBOUND_READERS: Final[int] = 5
_PLANNED_NEW: Final[int] = 5
_MAINTENANCE_EXISTING: Final[int] = 2
_MIN_SEPARATION_M: Final[float] = 15.0

_NEW_FIRST: Final[date] = date(2026, 3, 1)
_NEW_LAST: Final[date] = date(2026, 10, 31)
_PLANNED_FIRST: Final[date] = date(2026, 9, 1)  # planned work sits late in the window
_OLD_FIRST: Final[date] = date(2016, 1, 1)
_OLD_LAST: Final[date] = date(2024, 12, 31)
_READER_FIRST: Final[date] = date(2019, 1, 1)

EN: TypeAlias = tuple[float, float]  # metres east/north of the centre
LonLat: TypeAlias = list[float]  # GeoJSON position [lon, lat]


@dataclass(frozen=True)
class SampleCity:
    """Agencies, zones and devices of the illustrative city (see ``NOTICE``)."""

    agencies: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    devices: list[dict[str, Any]]


# --------------------------------------------------------------------------
# Static geography (metres from the centre; angles in degrees)
# --------------------------------------------------------------------------

_AGENCIES: Final[tuple[tuple[str, str, str], ...]] = (
    ("pl-prato", "Polizia Locale di Prato", "polizia_locale"),
    ("ps-questura-prato", "Polizia di Stato \u2013 Questura di Prato", "polizia_di_stato"),
    ("cc-prato", "Carabinieri \u2013 Comando Provinciale di Prato", "carabinieri"),
    ("gdf-prato", "Guardia di Finanza \u2013 Comando Provinciale di Prato", "guardia_di_finanza"),
    (
        "ag-procura-prato",
        "Procura della Repubblica presso il Tribunale di Prato",
        "autorita_giudiziaria",
    ),
)

# Walled centre: a hexagon stretched along the NW-SE axis like the real walls.
# (math angle counter-clockwise from east, radius in metres)
_CENTRE_VERTICES: Final[tuple[tuple[float, float], ...]] = (
    (15.0, 600.0),
    (75.0, 570.0),
    (135.0, 680.0),
    (195.0, 600.0),
    (255.0, 560.0),
    (315.0, 670.0),
)

# (id, name, centre east, centre north, radius) -- all well outside the walls.
_SENSITIVE: Final[tuple[tuple[str, str, float, float, float], ...]] = (
    ("stazione-centrale", "Stazione Centrale", 930.0, -290.0, 200.0),
    ("macrolotto-zero", "Macrolotto Zero", -800.0, 760.0, 280.0),
    ("san-paolo", "San Paolo", -1700.0, -620.0, 300.0),
    ("ospedale-santo-stefano", "Ospedale Santo Stefano", -2600.0, -2300.0, 260.0),
)

# (id, name, centre east, centre north); each zone is ~150 m around the school.
_SCHOOLS: Final[tuple[tuple[str, str, float, float], ...]] = (
    ("scuola-girasole", "Scuola primaria «Il Girasole»", -300.0, 1900.0),
    ("scuola-arcobaleno", "Scuola dell'infanzia «Arcobaleno»", 1750.0, 950.0),
    ("scuola-leonardo", "Istituto comprensivo «Leonardo»", 400.0, -1850.0),
)
_SCHOOL_RADIUS_M: Final[float] = 150.0

# Gates: (name, compass bearing of the road from the centre).
_GATES: Final[tuple[tuple[str, float], ...]] = (
    ("Varco Via Bologna", 6.0),
    ("Varco Via di Figline", 24.0),
    ("Varco Via di Coiano", 41.0),
    ("Varco Declassata Nord", 58.0),
    ("Varco Via di Gonfienti", 77.0),
    ("Varco Via Firenze", 95.0),
    ("Varco Via di Mezzana", 111.0),
    ("Varco Casello A11 Prato Est", 127.0),
    ("Varco Declassata Sud", 144.0),
    ("Varco Via Paronese", 159.0),
    ("Varco Via Roma", 175.0),
    ("Varco Via di Iolo", 192.0),
    ("Varco Via del Purgatorio", 208.0),
    ("Varco Via delle Pleiadi", 223.0),
    ("Varco Casello A11 Prato Ovest", 238.0),
    ("Varco Via Nuova Tobbianese", 254.0),
    ("Varco Via Pistoiese", 270.0),
    ("Varco Via Montalese", 287.0),
    ("Varco Via Galcianese", 304.0),
    ("Varco Via di Maliseti", 322.0),
    ("Varco Via di Canneto", 341.0),
)
_GATE_RING_M: Final[float] = 4500.0
_GATE_HALF_LENGTH_M: Final[float] = 60.0  # along the road
_GATE_HALF_WIDTH_M: Final[float] = 30.0  # across the road

# Periphery: irregular 24-gon, radius 4.85-5.0 km, so it contains every gate.
_PERIPHERY_VERTICES: Final[int] = 24
_PERIPHERY_MIN_R: Final[float] = 4850.0
_PERIPHERY_MAX_R: Final[float] = 5000.0
# Periphery cameras stay in the built-up belt, not out in the fields by the gates.
_URBAN_MIN_R: Final[float] = 800.0
_URBAN_MAX_R: Final[float] = 3800.0

# Recording servers: (id, name, zone, east, north, address, installed_on).
_SERVERS: Final[tuple[tuple[str, str, str, float, float, str, str], ...]] = (
    (
        "NVR-01",
        "NVR-01 \u2013 Sala server Palazzo Comunale",
        "centro-storico",
        -80.0,
        60.0,
        "10.20.0.11",
        "2016-05-16",
    ),
    (
        "NVR-02",
        "NVR-02 \u2013 Centrale operativa Polizia Locale",
        "periferia",
        1400.0,
        -1100.0,
        "10.20.0.12",
        "2019-09-02",
    ),
    (
        "NVR-03",
        "NVR-03 \u2013 Data center comunale",
        "periferia",
        -1900.0,
        -2100.0,
        "10.20.0.13",
        "2023-02-13",
    ),
)

# Camera plan per zone: (zone id, cameras, of which new in 2026).
# 100 + 4*24 + 7+7+8 + 66 = 284 non-gate cameras; 26 + 4*8 + 22 + 8 = 88 new.
_CAMERA_PLAN: Final[tuple[tuple[str, int, int], ...]] = (
    ("centro-storico", 100, 26),
    ("stazione-centrale", 24, 8),
    ("macrolotto-zero", 24, 8),
    ("san-paolo", 24, 8),
    ("ospedale-santo-stefano", 24, 8),
    ("scuola-girasole", 7, 7),
    ("scuola-arcobaleno", 7, 7),
    ("scuola-leonardo", 8, 8),
    ("periferia", 66, 8),
)

# Existing cameras with plate reading (old ZTL access points): zone -> count.
_CAMERA_ANPR: Final[dict[str, int]] = {"centro-storico": 2, "periferia": 2}
# A few cameras belong to other forces: zone -> (agency, count).
_OTHER_OWNERS: Final[dict[str, tuple[str, int]]] = {
    "stazione-centrale": ("ps-questura-prato", 4),
    "macrolotto-zero": ("cc-prato", 3),
    "san-paolo": ("cc-prato", 1),
}

_PLACES: Final[dict[str, tuple[str, ...]]] = {
    "centro-storico": (
        "Piazza del Comune",
        "Piazza del Duomo",
        "Piazza San Francesco",
        "Piazza Mercatale",
        "Piazza San Domenico",
        "Piazza delle Carceri",
        "Castello dell'Imperatore",
        "Via Mazzoni",
        "Via Garibaldi",
        "Via Ricasoli",
        "Via Magnolfi",
        "Via Pugliesi",
        "Corso Mazzini",
        "Via Cairoli",
        "Piazza Lippi",
        "Via Santa Trinita",
        "Via Guasti",
        "Piazza del Collegio",
        "Via Carraia",
        "Porta Santa Trinita",
        "Porta Mercatale",
        "Porta Pistoiese",
        "Porta al Serraglio",
        "Via dell'Accademia",
        "Via Convenevole",
    ),
    "stazione-centrale": (
        "Piazza della Stazione",
        "Viale Vittorio Veneto",
        "Sottopasso pedonale stazione",
        "Parcheggio scambiatore",
        "Piazzale Ebensee",
        "Deposito biciclette",
        "Fermata autobus stazione",
        "Via Ferrucci",
    ),
    "macrolotto-zero": (
        "Via Pistoiese",
        "Via Filzi",
        "Via Giordano",
        "Piazza dell'Immaginario",
        "Via Colombo",
        "Via Marini",
        "Via Corridoni",
        "Via Montegrappa",
    ),
    "san-paolo": (
        "Piazza San Paolo",
        "Via San Paolo",
        "Via Borgovalsugana",
        "Via Bertini",
        "Via Marradi",
        "Giardino di via Cilea",
        "Via Roubaix",
        "Via Cironi",
    ),
    "ospedale-santo-stefano": (
        "Ingresso pronto soccorso",
        "Parcheggio visitatori",
        "Ingresso principale ospedale",
        "Rotatoria ospedale",
        "Fermata autobus ospedale",
        "Ingresso personale",
        "Camera mortuaria",
        "Elisuperficie",
    ),
    "periferia": (
        "Viale della Repubblica",
        "Viale Leonardo da Vinci",
        "Via Valentini",
        "Viale Montegrappa",
        "Piazza Ciardi",
        "Viale Galilei",
        "Via Zarini",
        "Piazza dei Macelli",
        "Via Strozzi",
        "Parco di Galceti",
        "Via Cavour",
        "Via Curtatone",
        "Via Nenni",
        "Via Fiorentina",
        "Via Ciulli",
        "Parco Prato",
        "Via Lazzerini",
        "Via Gora del Pero",
        "Via Marx",
        "Piazza Mercato Nuovo",
    ),
}
_SCHOOL_PLACES: Final[tuple[str, ...]] = (
    "ingresso principale",
    "cancello laterale",
    "fermata scuolabus",
    "attraversamento pedonale",
    "parcheggio docenti",
    "via d'accesso",
    "palestra",
    "cortile",
)
_QUALIFIERS: Final[tuple[str, ...]] = (
    "lato nord",
    "lato sud",
    "lato est",
    "lato ovest",
    "incrocio",
    "panoramica",
)

# h264 kbps at 25 fps per (width, codec): plausible CBR settings for the resolution.
_BITRATES: Final[dict[tuple[int, str], int]] = {
    (1280, "h264"): 2048,
    (1280, "h265"): 1024,
    (1920, "h264"): 4096,
    (1920, "h265"): 2048,
    (2560, "h264"): 6144,
    (2560, "h265"): 3072,
}
_HEIGHTS: Final[dict[int, int]] = {1280: 720, 1920: 1080, 2560: 1440}


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------


def _lonlat(east: float, north: float) -> LonLat:
    """Project local metres to a GeoJSON [lon, lat] rounded to 6 decimals (~0.1 m)."""
    return [
        round(CENTER_LON + east / _M_PER_DEG_LON, 6),
        round(CENTER_LAT + north / _M_PER_DEG_LAT, 6),
    ]


def _en(lon: float, lat: float) -> EN:
    """Inverse of ``_lonlat`` (no rounding)."""
    return ((lon - CENTER_LON) * _M_PER_DEG_LON, (lat - CENTER_LAT) * _M_PER_DEG_LAT)


def _polygon(points: list[EN]) -> dict[str, Any]:
    """GeoJSON Polygon from counter-clockwise local points; closes the ring."""
    ring = [_lonlat(e, n) for e, n in points]
    ring.append(list(ring[0]))
    geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
    _check_ring(ring)
    return geometry


def _star(centre: EN, vertices: list[tuple[float, float]]) -> list[EN]:
    """Points at (math angle, radius) around ``centre``; ascending angles give CCW order."""
    ce, cn = centre
    out: list[EN] = []
    for angle, radius in sorted(vertices):
        a = math.radians(angle)
        out.append((ce + radius * math.cos(a), cn + radius * math.sin(a)))
    return out


def _octagon(centre: EN, radius: float, rng: random.Random) -> list[EN]:
    """Slightly irregular octagon: looks hand-drawn, stays star-shaped (hence simple)."""
    vertices = [
        (i * 45.0 + rng.uniform(-8.0, 8.0), radius * rng.uniform(0.9, 1.1)) for i in range(8)
    ]
    return _star(centre, vertices)


def _bearing_axes(bearing_deg: float) -> tuple[EN, EN]:
    """Unit vectors along a compass bearing and 90 degrees to its left.

    Together they form a rotation, so counter-clockwise shapes stay counter-clockwise.
    """
    b = math.radians(bearing_deg)
    along = (math.sin(b), math.cos(b))
    left = (-math.cos(b), math.sin(b))
    return along, left


def _local(origin: EN, bearing_deg: float, u: float, v: float) -> EN:
    """Point ``u`` metres along the bearing and ``v`` metres to its left from ``origin``."""
    along, left = _bearing_axes(bearing_deg)
    return (origin[0] + u * along[0] + v * left[0], origin[1] + u * along[1] + v * left[1])


def _signed_area(ring: list[LonLat]) -> float:
    return 0.5 * sum(
        ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(len(ring) - 1)
    )


def _orient(p: LonLat, q: LonLat, r: LonLat) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _segments_cross(a: LonLat, b: LonLat, c: LonLat, d: LonLat) -> bool:
    """True when segments ab and cd touch (a conservative test is fine for non-adjacent edges)."""
    d1, d2 = _orient(c, d, a), _orient(c, d, b)
    d3, d4 = _orient(a, b, c), _orient(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on(p: LonLat, q: LonLat, r: LonLat) -> bool:
        return (
            _orient(p, q, r) == 0
            and min(p[0], q[0]) <= r[0] <= max(p[0], q[0])
            and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])
        )

    return on(c, d, a) or on(c, d, b) or on(a, b, c) or on(a, b, d)


def _check_ring(ring: list[LonLat]) -> None:
    """Fail loudly on a ring that would be invalid GeoJSON/PostGIS input."""
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise ValueError("polygon ring must be closed with at least 3 distinct points")
    for lon, lat in ring:
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise ValueError("polygon coordinate out of range")
    if _signed_area(ring) <= 0:
        raise ValueError("polygon ring must be counter-clockwise")
    edges = len(ring) - 1
    for i in range(edges):
        for j in range(i + 2, edges):
            if i == 0 and j == edges - 1:
                continue  # first and last edges share the closing vertex
            if _segments_cross(ring[i], ring[i + 1], ring[j], ring[j + 1]):
                raise ValueError("polygon ring self-intersects")


def _in_ring(lon: float, lat: float, ring: list[LonLat]) -> bool:
    """Even-odd ray casting towards +lon."""
    inside = False
    for i in range(len(ring) - 1):
        x1, y1 = ring[i]
        x2, y2 = ring[i + 1]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside


def point_in_polygon(lon: float, lat: float, geometry: dict[str, Any]) -> bool:
    """True when (lon, lat) lies inside a GeoJSON Polygon (outer ring minus holes)."""
    rings: list[list[LonLat]] = geometry["coordinates"]
    if not rings or not _in_ring(lon, lat, rings[0]):
        return False
    return not any(_in_ring(lon, lat, hole) for hole in rings[1:])


def _distance_m(a: EN, b: EN) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not _SLUG_RE.match(slug):
        raise ValueError(f"bad slug {slug!r}")
    return slug


def _zone(zone_id: str, name: str, kind: str, points: list[EN]) -> dict[str, Any]:
    return {"id": zone_id, "name": name, "kind": kind, "geometry": _polygon(points)}


def _build_zones(rng: random.Random) -> tuple[list[dict[str, Any]], list[EN]]:
    """All zones, plus each gate's road-side anchor point (same order as ``_GATES``)."""
    zones: list[dict[str, Any]] = []
    centre = [
        (a + rng.uniform(-3.0, 3.0), r + rng.uniform(-15.0, 15.0)) for a, r in _CENTRE_VERTICES
    ]
    zones.append(_zone("centro-storico", "Centro storico", "centre", _star((0.0, 0.0), centre)))

    for zone_id, name, east, north, radius in _SENSITIVE:
        zones.append(_zone(zone_id, name, "sensitive", _octagon((east, north), radius, rng)))

    for zone_id, name, east, north in _SCHOOLS:
        zones.append(_zone(zone_id, name, "school", _octagon((east, north), _SCHOOL_RADIUS_M, rng)))

    step = 360.0 / _PERIPHERY_VERTICES
    periphery = [
        (i * step + rng.uniform(-3.0, 3.0), rng.uniform(_PERIPHERY_MIN_R, _PERIPHERY_MAX_R))
        for i in range(_PERIPHERY_VERTICES)
    ]
    zones.append(_zone("periferia", "Periferia", "periphery", _star((0.0, 0.0), periphery)))

    anchors: list[EN] = []
    for name, bearing in _GATES:
        distance = _GATE_RING_M + rng.uniform(-150.0, 150.0)
        anchor = _local((0.0, 0.0), bearing, distance, 0.0)
        # Elongated octagon along the road: ellipse samples in (along, left) axes.
        shape = [
            _local(
                anchor,
                bearing,
                _GATE_HALF_LENGTH_M * math.cos(math.radians(k * 45.0)),
                _GATE_HALF_WIDTH_M * math.sin(math.radians(k * 45.0)),
            )
            for k in range(8)
        ]
        zones.append(_zone(_slug(name), name, "gate", shape))
        anchors.append(anchor)
    return zones, anchors


def _device(
    *,
    device_id: str,
    name: str,
    kind: str,
    pos: LonLat,
    zone_id: str,
    installed_on: str,
    heading: float | None = None,
    agency_id: str = "pl-prato",
    codec: str | None = None,
    width: int | None = None,
    fps: int | None = None,
    anpr_vendor: str | None = None,
    lane: int | None = None,
    direction: str | None = None,
    recording_server_id: str | None = None,
    address: str | None = None,
    status: str = "active",
    notes: str | None = None,
    sub_stream: bool = False,
) -> dict[str, Any]:
    """One device record with every schema key present (None where not applicable)."""
    streams = kind != "recording_server"
    bitrate: int | None = None
    if codec is not None and width is not None and fps is not None:
        # Scale the 25 fps figure and keep it on a 256 kbps grid like real encoder presets.
        bitrate = round(_BITRATES[(width, codec)] * fps / 25 / 256) * 256
    return {
        "id": device_id,
        "name": name,
        "kind": kind,
        "lat": pos[1],
        "lon": pos[0],
        "heading": heading,
        "zone_id": zone_id,
        "agency_id": agency_id,
        "main_stream_url": f"{_RTSP_BASE}/{device_id}/main" if streams else None,
        "sub_stream_url": f"{_RTSP_BASE}/{device_id}/sub" if sub_stream else None,
        "codec": codec,
        "width": width,
        "height": _HEIGHTS[width] if width is not None else None,
        "fps": fps,
        "bitrate_kbps": bitrate,
        "anpr_vendor": anpr_vendor,
        "lane": lane,
        "direction": direction,
        "recording_server_id": recording_server_id,
        "address": address,
        "installed_on": installed_on,
        "status": status,
        "notes": notes,
    }


def _random_date(rng: random.Random, first: date, last: date) -> str:
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal())).isoformat()


def _heading(rng: random.Random, value: float | None = None) -> float:
    raw = rng.uniform(0.0, 360.0) if value is None else value
    # Rounding can land on 360.0; wrap so headings stay in [0, 360).
    return round(raw % 360.0, 1) % 360.0


def _nvr_for(zone_id: str, pos: LonLat) -> str:
    """Centre goes to NVR-01; elsewhere split east/west of the centre between the others."""
    if zone_id == "centro-storico":
        return "NVR-01"
    return "NVR-02" if pos[0] >= CENTER_LON else "NVR-03"


def _sample_point(
    rng: random.Random,
    zone: dict[str, Any],
    avoid: list[dict[str, Any]],
    taken: list[EN],
    min_r: float = 0.0,
    max_r: float = math.inf,
) -> LonLat:
    """Rejection-sample a rounded position in ``zone``, outside ``avoid``, away from ``taken``."""
    ring: list[LonLat] = zone["geometry"]["coordinates"][0]
    local = [_en(lon, lat) for lon, lat in ring]
    west = min(p[0] for p in local)
    east = max(p[0] for p in local)
    south = min(p[1] for p in local)
    north = max(p[1] for p in local)
    for _ in range(20_000):
        e, n = rng.uniform(west, east), rng.uniform(south, north)
        if not min_r <= math.hypot(e, n) <= max_r:
            continue
        # Test the rounded position: that is what callers will store.
        pos = _lonlat(e, n)
        if not point_in_polygon(pos[0], pos[1], zone["geometry"]):
            continue
        if any(point_in_polygon(pos[0], pos[1], other["geometry"]) for other in avoid):
            continue
        here = _en(pos[0], pos[1])
        if any(_distance_m(here, p) < _MIN_SEPARATION_M for p in taken):
            continue
        taken.append(here)
        return pos
    raise RuntimeError(f"could not place a device in zone {zone['id']}")


def _build_servers(zones: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = []
    for server_id, name, zone_id, east, north, address, installed in _SERVERS:
        pos = _lonlat(east, north)
        if not point_in_polygon(pos[0], pos[1], zones[zone_id]["geometry"]):
            raise RuntimeError(f"{server_id} outside {zone_id}")
        devices.append(
            _device(
                device_id=server_id,
                name=name,
                kind="recording_server",
                pos=pos,
                zone_id=zone_id,
                installed_on=installed,
                address=address,
            )
        )
    return devices


def _build_gates(rng: random.Random, anchors: list[EN]) -> list[dict[str, Any]]:
    """One plate reader per gate; 12 gates also get a context camera a few metres away."""
    count = len(_GATES)
    paired = set(rng.sample(range(count), _PAIRED_GATES))
    outbound = set(rng.sample(range(count), _OUTBOUND_READERS))
    vendors = ["tattile"] * (count // 2 + 1) + ["hikvision"] * (count - count // 2 - 1)
    rng.shuffle(vendors)

    readers: list[dict[str, Any]] = []
    cameras: list[dict[str, Any]] = []
    for index, ((name, bearing), anchor) in enumerate(zip(_GATES, anchors, strict=True)):
        number = index + 1
        zone_id = _slug(name)
        direction = "outbound" if index in outbound else "inbound"
        lane = rng.choice((1, 2))
        # Traffic keeps right: inbound lanes lie left of the outward bearing.
        side = 1.0 if direction == "inbound" else -1.0
        offset = side * (2.0 + 3.5 * lane)
        u = rng.uniform(-15.0, 15.0)
        reader_en = _local(anchor, bearing, u, offset)
        # Readers face oncoming traffic to read front plates: inbound look outward, outbound inward.
        view = bearing if direction == "inbound" else bearing + 180.0
        installed = _random_date(rng, _READER_FIRST, _OLD_LAST)
        vendor = vendors[index]
        pos = _lonlat(*reader_en)
        readers.append(
            _device(
                device_id=f"LPR-{number:02d}",
                name=f"{name} \u2013 lettore targhe corsia {lane} "
                f"({'in ingresso' if direction == 'inbound' else 'in uscita'})",
                kind="plate_reader",
                pos=pos,
                zone_id=zone_id,
                installed_on=installed,
                heading=_heading(rng, view + rng.uniform(-4.0, 4.0)),
                codec="h265" if vendor == "hikvision" else "h264",
                width=1280,
                fps=25,
                anpr_vendor=vendor,
                lane=lane,
                direction=direction,
                recording_server_id=_nvr_for(zone_id, pos),
                address=f"10.20.1.{10 + number}",
            )
        )
        if index in paired:
            # Same pole or the next one along the road: 4-12 m from the reader.
            gap = rng.uniform(4.0, 12.0) * rng.choice((-1.0, 1.0))
            cam_pos = _lonlat(*_local(reader_en, bearing, gap, side * 1.5))
            cameras.append(
                _device(
                    device_id=f"CAM-G{number:02d}",
                    name=f"{name} \u2013 telecamera di contesto",
                    kind="camera",
                    pos=cam_pos,
                    zone_id=zone_id,
                    installed_on=installed,
                    heading=_heading(rng, view + rng.uniform(-20.0, 20.0)),
                    codec="h264",
                    width=1920,
                    fps=25,
                    recording_server_id=_nvr_for(zone_id, cam_pos),
                    sub_stream=True,
                    notes="Telecamera di contesto abbinata al lettore targhe",
                )
            )
    return readers + cameras


def _camera_name(zone: dict[str, Any], index: int) -> str:
    """Italian label unique within the zone: place cycles first, qualifier second."""
    if zone["kind"] == "school":
        place = _SCHOOL_PLACES[index % len(_SCHOOL_PLACES)]
        return f"{zone['name']} \u2013 {place}"
    places = _PLACES[zone["id"]]
    place = places[index % len(places)]
    qualifier = _QUALIFIERS[(index // len(places)) % len(_QUALIFIERS)]
    return f"{place} \u2013 {qualifier}"


def _build_cameras(
    rng: random.Random, zones: dict[str, dict[str, Any]], taken: list[EN]
) -> list[dict[str, Any]]:
    """The 284 ordinary cameras, zone by zone, following ``_CAMERA_PLAN``."""
    not_periphery = [z for z in zones.values() if z["kind"] != "periphery"]
    cameras: list[dict[str, Any]] = []
    serial = 0
    for zone_id, count, new_count in _CAMERA_PLAN:
        zone = zones[zone_id]
        new_slots = set(rng.sample(range(count), new_count))
        old_slots = [i for i in range(count) if i not in new_slots]
        anpr_slots = set(rng.sample(old_slots, _CAMERA_ANPR.get(zone_id, 0)))
        agency, owned = _OTHER_OWNERS.get(zone_id, ("pl-prato", 0))
        free_old = [i for i in old_slots if i not in anpr_slots]
        other_slots = set(rng.sample(free_old, owned))
        is_periphery = zone["kind"] == "periphery"
        for slot in range(count):
            serial += 1
            camera_id = f"CAM-{serial:04d}"
            if is_periphery:
                pos = _sample_point(rng, zone, not_periphery, taken, _URBAN_MIN_R, _URBAN_MAX_R)
            else:
                pos = _sample_point(rng, zone, [], taken)
            is_new = slot in new_slots
            is_anpr = slot in anpr_slots
            notes: str | None = None
            if is_new:
                installed = _random_date(rng, _NEW_FIRST, _NEW_LAST)
                # New 2026 models: mostly H.265, roughly 30% at 1440p for finer detail.
                codec = "h265" if rng.random() < 0.75 else "h264"
                width = 2560 if rng.random() < 0.3 else 1920
                fps = 25
                notes = (
                    "Progetto «Scuole sicure» 2026"
                    if zone["kind"] == "school"
                    else "Ampliamento impianto 2026"
                )
            else:
                installed = _random_date(rng, _OLD_FIRST, _OLD_LAST)
                year = int(installed[:4])
                codec = "h265" if year >= 2021 and rng.random() < 0.5 else "h264"
                width = 1920
                # Early units were often configured at 15 fps to save bandwidth.
                fps = 15 if year <= 2018 and rng.random() < 0.5 else 25
            if is_anpr:
                notes = "Telecamera con lettura targhe integrata"
            owner = agency if slot in other_slots else "pl-prato"
            if owner != "pl-prato":
                notes = "In gestione condivisa con la Polizia Locale"
            cameras.append(
                _device(
                    device_id=camera_id,
                    name=_camera_name(zone, slot),
                    kind="camera_anpr" if is_anpr else "camera",
                    pos=pos,
                    zone_id=zone_id,
                    installed_on=installed,
                    heading=_heading(rng),
                    agency_id=owner,
                    codec=codec,
                    width=width,
                    fps=fps,
                    anpr_vendor="generic" if is_anpr else None,
                    lane=1 if is_anpr else None,
                    direction="inbound" if is_anpr else None,
                    recording_server_id=_nvr_for(zone_id, pos),
                    sub_stream=True,
                    notes=notes,
                )
            )
    _assign_statuses(rng, cameras)
    return cameras


def _assign_statuses(rng: random.Random, cameras: list[dict[str, Any]]) -> None:
    """A few new cameras are still planned, two old ones are in maintenance."""
    new = [c for c in cameras if c["installed_on"].startswith("2026")]
    for camera in rng.sample(new, _PLANNED_NEW):
        camera["status"] = "planned"
        camera["installed_on"] = _random_date(rng, _PLANNED_FIRST, _NEW_LAST)
        camera["notes"] = "Installazione pianificata, in attesa di collaudo"
    old = [
        c
        for c in cameras
        if not c["installed_on"].startswith("2026")
        and c["agency_id"] == "pl-prato"
        and c["kind"] == "camera"
    ]
    for camera in rng.sample(old, _MAINTENANCE_EXISTING):
        camera["status"] = "maintenance"
        camera["notes"] = "In manutenzione: sostituzione ottica"


def sample_city(seed: int = 2026) -> SampleCity:
    """Build the illustrative city; equal seeds give equal results."""
    rng = random.Random(seed)
    agencies = [{"id": a, "name": n, "kind": k} for a, n, k in _AGENCIES]
    zone_list, anchors = _build_zones(rng)
    zones = {z["id"]: z for z in zone_list}

    devices = _build_servers(zones)
    gate_devices = _build_gates(rng, anchors)
    devices += gate_devices
    taken = [_en(d["lon"], d["lat"]) for d in devices]
    devices += _build_cameras(rng, zones, taken)

    # Cheap guards so a future edit cannot silently break the advertised shape.
    if len(devices) != _TOTAL_DEVICES:
        raise AssertionError(f"expected {_TOTAL_DEVICES} devices, got {len(devices)}")
    new = sum(1 for d in devices if d["installed_on"].startswith("2026"))
    if new != _NEW_CAMERAS:
        raise AssertionError(f"expected {_NEW_CAMERAS} new cameras, got {new}")
    return SampleCity(agencies=agencies, zones=zone_list, devices=devices)
