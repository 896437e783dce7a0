"""Tests for the illustrative sample city generator (vigila.sim.city)."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from typing import Any

import pytest

from vigila.sim.city import NOTICE, SampleCity, sample_city

SEEDS = [2026, 1, 4242]
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
AGENCY_KINDS = {
    "polizia_locale",
    "polizia_di_stato",
    "carabinieri",
    "guardia_di_finanza",
    "autorita_giudiziaria",
    "other",
}
ZONE_KINDS = {"centre", "periphery", "sensitive", "school", "gate", "other"}
CAMERA_KINDS = {"camera", "camera_anpr"}
DEVICE_KEYS = {
    "id",
    "name",
    "kind",
    "lat",
    "lon",
    "heading",
    "zone_id",
    "agency_id",
    "main_stream_url",
    "sub_stream_url",
    "codec",
    "width",
    "height",
    "fps",
    "bitrate_kbps",
    "anpr_vendor",
    "lane",
    "direction",
    "recording_server_id",
    "address",
    "installed_on",
    "status",
    "notes",
}

Ring = list[list[float]]


# Independent geometry helpers, deliberately not imported from the module under test.


def inside(lon: float, lat: float, geometry: dict[str, Any]) -> bool:
    ring: Ring = geometry["coordinates"][0]
    hit = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def cross(o: list[float], a: list[float], b: list[float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_intersect(p1: list[float], p2: list[float], q1: list[float], q2: list[float]) -> bool:
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True

    def on_segment(a: list[float], b: list[float], c: list[float]) -> bool:
        return (
            cross(a, b, c) == 0
            and min(a[0], b[0]) <= c[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])
        )

    return (
        on_segment(q1, q2, p1)
        or on_segment(q1, q2, p2)
        or on_segment(p1, p2, q1)
        or on_segment(p1, p2, q2)
    )


def distance_m(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Haversine distance between two devices."""
    r = 6_371_000.0
    la1, la2 = math.radians(a["lat"]), math.radians(b["lat"])
    dla = la2 - la1
    dlo = math.radians(b["lon"] - a["lon"])
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


@pytest.fixture(scope="module", params=SEEDS)
def city(request: pytest.FixtureRequest) -> SampleCity:
    seed: int = request.param
    return sample_city(seed)


def cameras(city: SampleCity) -> list[dict[str, Any]]:
    return [d for d in city.devices if d["kind"] in CAMERA_KINDS]


def test_notice_labels_data_as_illustrative() -> None:
    assert "illustrativi" in NOTICE
    assert "not a real installation" in NOTICE


def test_device_counts(city: SampleCity) -> None:
    kinds = Counter(d["kind"] for d in city.devices)
    assert len(city.devices) == 320
    assert kinds["recording_server"] == 3
    assert kinds["plate_reader"] == 21
    assert kinds["camera"] + kinds["camera_anpr"] == 296
    assert 1 <= kinds["camera_anpr"] <= 8
    assert set(kinds) == {"recording_server", "plate_reader", "camera", "camera_anpr"}
    servers = sorted(d["id"] for d in city.devices if d["kind"] == "recording_server")
    assert servers == ["NVR-01", "NVR-02", "NVR-03"]
    readers = sorted(d["id"] for d in city.devices if d["kind"] == "plate_reader")
    assert readers == [f"LPR-{i:02d}" for i in range(1, 22)]


def test_new_cameras_installed_in_2026(city: SampleCity) -> None:
    new = [c for c in cameras(city) if c["installed_on"].startswith("2026")]
    assert len(new) == 88
    assert all("2026-03-01" <= c["installed_on"] <= "2026-10-31" for c in new)
    old = [c for c in cameras(city) if not c["installed_on"].startswith("2026")]
    assert all("2016-01-01" <= c["installed_on"] <= "2024-12-31" for c in old)
    # Only cameras were installed in 2026.
    assert sum(d["installed_on"].startswith("2026") for d in city.devices) == 88
    statuses = Counter(d["status"] for d in city.devices)
    assert statuses == {"active": 313, "planned": 5, "maintenance": 2}
    assert all(c["installed_on"].startswith("2026") for c in new if c["status"] == "planned")


def test_plate_readers_at_gates(city: SampleCity) -> None:
    zones = {z["id"]: z for z in city.zones}
    gate_ids = [z["id"] for z in city.zones if z["kind"] == "gate"]
    assert len(gate_ids) == 21
    readers = [d for d in city.devices if d["kind"] == "plate_reader"]
    assert sorted(r["zone_id"] for r in readers) == sorted(gate_ids)
    paired = alone = 0
    for reader in readers:
        assert zones[reader["zone_id"]]["kind"] == "gate"
        assert reader["anpr_vendor"] in {"hikvision", "tattile"}
        assert reader["lane"] in {1, 2}
        assert reader["direction"] in {"inbound", "outbound"}
        assert (reader["width"], reader["height"]) == (1280, 720)
        assert reader["address"].startswith("10.20.1.")
        buddies = [
            c
            for c in cameras(city)
            if c["zone_id"] == reader["zone_id"] and distance_m(c, reader) <= 50.0
        ]
        if buddies:
            paired += 1
        else:
            alone += 1
    assert (paired, alone) == (12, 9)
    vendors = Counter(r["anpr_vendor"] for r in readers)
    assert len(vendors) == 2
    directions = Counter(r["direction"] for r in readers)
    assert directions["inbound"] > directions["outbound"]


def test_school_zones_have_cameras(city: SampleCity) -> None:
    schools = [z for z in city.zones if z["kind"] == "school"]
    assert len(schools) == 3
    for zone in schools:
        near = [c for c in cameras(city) if inside(c["lon"], c["lat"], zone["geometry"])]
        assert len(near) >= 6, zone["id"]


def test_zone_inventory(city: SampleCity) -> None:
    kinds = Counter(z["kind"] for z in city.zones)
    assert kinds == {"centre": 1, "sensitive": 4, "school": 3, "periphery": 1, "gate": 21}
    assert any(z["id"] == "centro-storico" and z["kind"] == "centre" for z in city.zones)
    assert any(z["id"] == "periferia" and z["kind"] == "periphery" for z in city.zones)
    for zone in city.zones:
        assert SLUG_RE.match(zone["id"]), zone["id"]
        assert zone["kind"] in ZONE_KINDS
        assert zone["name"]
    # The periphery contains every other zone.
    periphery = next(z for z in city.zones if z["kind"] == "periphery")
    for zone in city.zones:
        if zone is periphery:
            continue
        for lon, lat in zone["geometry"]["coordinates"][0]:
            assert inside(lon, lat, periphery["geometry"]), zone["id"]


def test_camera_distribution(city: SampleCity) -> None:
    per_zone = Counter(c["zone_id"] for c in cameras(city))
    total = sum(per_zone.values())
    assert 0.30 <= per_zone["centro-storico"] / total <= 0.40
    for zone in city.zones:
        if zone["kind"] == "sensitive":
            assert 0.06 <= per_zone[zone["id"]] / total <= 0.10, zone["id"]
    assert per_zone["periferia"] > 0


def test_polygons_valid(city: SampleCity) -> None:
    for zone in city.zones:
        geometry = zone["geometry"]
        assert geometry["type"] == "Polygon"
        ring: Ring = geometry["coordinates"][0]
        assert len(ring) >= 4
        assert ring[0] == ring[-1], zone["id"]
        for lon, lat in ring:
            assert -180.0 <= lon <= 180.0
            assert -90.0 <= lat <= 90.0
        area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
        assert area2 > 0, f"{zone['id']} is not counter-clockwise"
        edges = len(ring) - 1
        for i in range(edges):
            for j in range(i + 2, edges):
                if i == 0 and j == edges - 1:
                    continue  # adjacent through the closing vertex
                assert not segments_intersect(ring[i], ring[i + 1], ring[j], ring[j + 1]), (
                    f"{zone['id']}: edges {i} and {j} intersect"
                )


def test_devices_inside_their_zone(city: SampleCity) -> None:
    zones = {z["id"]: z for z in city.zones}
    for device in city.devices:
        zone = zones[device["zone_id"]]
        assert inside(device["lon"], device["lat"], zone["geometry"]), device["id"]


def test_references_and_ids(city: SampleCity) -> None:
    zone_ids = {z["id"] for z in city.zones}
    agency_ids = {a["id"] for a in city.agencies}
    server_ids = {d["id"] for d in city.devices if d["kind"] == "recording_server"}
    assert len(zone_ids) == len(city.zones)
    assert len(agency_ids) == len(city.agencies)
    ids = [d["id"] for d in city.devices]
    assert len(set(ids)) == len(ids)
    for agency in city.agencies:
        assert SLUG_RE.match(agency["id"])
        assert agency["kind"] in AGENCY_KINDS
    assert {
        "pl-prato",
        "ps-questura-prato",
        "cc-prato",
        "gdf-prato",
        "ag-procura-prato",
    } <= agency_ids
    for device in city.devices:
        assert set(device) == DEVICE_KEYS, device["id"]
        assert ID_RE.match(device["id"]), device["id"]
        assert device["zone_id"] in zone_ids
        assert device["agency_id"] in agency_ids
        if device["kind"] == "recording_server":
            assert device["recording_server_id"] is None
        else:
            assert device["recording_server_id"] in server_ids
    owners = Counter(d["agency_id"] for d in city.devices)
    assert owners["pl-prato"] >= 300
    assert owners["ps-questura-prato"] + owners["cc-prato"] > 0


def test_device_fields(city: SampleCity) -> None:
    for d in city.devices:
        assert round(d["lat"], 6) == d["lat"] and round(d["lon"], 6) == d["lon"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", d["installed_on"])
        if d["kind"] == "recording_server":
            assert d["heading"] is None
            assert d["main_stream_url"] is None and d["sub_stream_url"] is None
            assert d["codec"] is None and d["bitrate_kbps"] is None
            assert d["address"]
            continue
        assert 0.0 <= d["heading"] < 360.0
        assert d["main_stream_url"] == f"rtsp://127.0.0.1:8554/{d['id']}/main"
        assert d["codec"] in {"h264", "h265"}
        assert isinstance(d["bitrate_kbps"], int) and 512 <= d["bitrate_kbps"] <= 8192
        assert d["fps"] in {15, 25}
        if d["kind"] in CAMERA_KINDS:
            assert d["sub_stream_url"] == f"rtsp://127.0.0.1:8554/{d['id']}/sub"
            assert (d["width"], d["height"]) in {(1920, 1080), (2560, 1440)}
        else:
            assert d["sub_stream_url"] is None
        if d["kind"] == "camera_anpr":
            assert d["anpr_vendor"] == "generic"
        elif d["kind"] == "camera":
            assert d["anpr_vendor"] is None


def test_deterministic() -> None:
    assert sample_city(2026) == sample_city(2026)
    assert sample_city() == sample_city(2026)
    assert sample_city(7) != sample_city(8)
