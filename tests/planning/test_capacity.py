"""Capacity planning: every figure against a calculation written out by hand.

Units as in the module: Mbit/s = 1e6 bit/s, MB/s = 1e6 byte/s, TB = 1e12 byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CONSOLE, device
from vigila import registry
from vigila.core.errors import InvalidInput
from vigila.planning.capacity import (
    BITS_PER_PIXEL,
    DEFAULT_STREAMS_PER_CORE,
    Activity,
    CapacityPlan,
    Constraint,
    ConstraintMargin,
    WhatIf,
    estimate_bitrate_kbps,
    from_registry,
    load_whatif,
    parse_whatif,
    plan_capacity,
    render_table,
)
from vigila.registry.models import Codec
from vigila.store import Database

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "reference-plan.yaml"


def cams(count: int, kbps: int | None = 4000, **extra: Any) -> dict[str, Any]:
    group: dict[str, Any] = {"name": f"{count} cameras", "count": count, "width": 1920,
                             "height": 1080, "fps": 25, "codec": "h264", **extra}
    if kbps is not None:
        group["bitrate_kbps"] = kbps
    return group


def doc(**over: Any) -> dict[str, Any]:
    """10 cameras at 4000 kbps, RAID 6 of 12 x 16 TB, 2 servers without a spare."""
    base: dict[str, Any] = {
        "cameras": [cams(10)],
        "storage": {"raid": 6, "disks_per_group": 12, "disk_tb": 16,
                    "filesystem_overhead": 0.05, "headroom": 0.15},
        "servers": {"count": 2, "nic_gbps": 10, "nic_max_utilisation": 0.7,
                    "disk_write_mbps": 800, "cores": 16, "streams_per_core": 40,
                    "disk_bays": 24, "n_plus_one": False},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def plan(**over: Any) -> CapacityPlan:
    return plan_capacity(WhatIf.model_validate(doc(**over)))


def margin(p: CapacityPlan, constraint: Constraint) -> ConstraintMargin:
    return next(m for m in p.constraints if m.constraint == constraint)


def needed_by(p: CapacityPlan) -> dict[Constraint, int]:
    return {m.constraint: m.servers_needed for m in p.constraints}


def invalid(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_whatif(text)
    return caught.value


# --- figures by hand ---------------------------------------------------------------------------

def test_ingest_storage_raid_and_disks_by_hand() -> None:
    p = plan(storage={"disk_tb": 0.25})
    # 10 cameras x 4000 kbit/s = 40 000 kbit/s = 40 Mbit/s
    assert p.ingest_mbps == 40.0 and p.recorded_mbps == 40.0
    assert p.ingest_mbps_per_server == 20.0  # over 2 working servers
    # 40e6 bit/s x 86 400 s x 7 d / 8 bit = 3.024e12 byte = 3.024 TB
    assert p.storage_tb_usable_needed == pytest.approx(3.024)
    # keep 15 % of the filesystem free: 3.024 / 0.85 = 3.557647 TB
    assert p.storage_tb_filesystem == pytest.approx(3.557647, abs=1e-3)
    # the filesystem takes 5 % of the array: 3.557647 / 0.95 = 3.744892 TB
    assert p.storage_tb_array == pytest.approx(3.744892, abs=1e-3)
    # RAID 6 in groups of 12: 10 disks of data each, x 12/10 = 4.493870 TB raw
    assert p.storage_tb_raw == pytest.approx(4.493870, abs=1e-3)
    # a group holds 10 x 0.25 TB = 2.5 TB: ceil(3.744892 / 2.5) = 2 groups = 24 disks
    assert p.disks_needed == 24
    # per working server: ceil(3.744892 / 2 / 2.5) = 1 group = 12 disks, on 2 servers = 24
    assert p.disks_per_server == 12 and p.disks_installed == 24
    assert (p.raid, p.disks_per_group, p.disk_tb) == (6, 12, 0.25)


@pytest.mark.parametrize(("raid", "group", "raw", "disks"), [
    # array 3.744892 TB of 1 TB disks
    (0, None, 3.744892, 4),            # no redundancy: ceil(3.74) = 4 disks
    (1, None, 2 * 3.744892, 8),        # mirrored pairs: 4 pairs
    (10, None, 2 * 3.744892, 8),       # striped pairs: same disks as RAID 1
    (5, 5, 3.744892 * 5 / 4, 5),       # 4 data disks a group = 4 TB >= 3.74: one group
    (6, 6, 3.744892 * 6 / 4, 6),       # 4 data disks a group: one group
    (6, 4, 3.744892 * 4 / 2, 8),       # 2 data disks a group: ceil(3.74 / 2) = 2 groups
])
def test_raid_levels_by_hand(raid: int, group: int | None, raw: float, disks: int) -> None:
    p = plan(storage={"raid": raid, "disks_per_group": group, "disk_tb": 1})
    assert p.storage_tb_raw == pytest.approx(raw, abs=1e-3)
    assert p.disks_needed == disks


def test_reference_sizes_by_default() -> None:
    # RAID 5/6 without disks_per_group: groups of 12
    p = plan(storage={"raid": 5, "disks_per_group": None})
    assert p.disks_per_group == 12
    assert p.storage_tb_raw == pytest.approx(3.744892 * 12 / 11, abs=1e-3)
    assert any("RAID 5 with 16 TB" in w for w in p.warnings)
    assert any("RAID 0" in w for w in plan(storage={"raid": 0, "disks_per_group": None}).warnings)


# --- each constraint binding in turn -----------------------------------------------------------

def test_nic_binding() -> None:
    # 30 x 4000 kbit/s = 120 Mbit/s; a server takes 0.1 Gbit/s x 1000 x 0.5 = 50 Mbit/s
    p = plan(cameras=[cams(30)], servers={"nic_gbps": 0.1, "nic_max_utilisation": 0.5})
    nic = margin(p, Constraint.NIC)
    assert (nic.load, nic.capacity_per_server) == (120.0, 50.0)
    assert nic.servers_needed == 3  # ceil(120 / 50)
    assert nic.utilisation_pct == 120.0  # 120 / (2 working x 50)
    assert nic.headroom_servers == -1
    assert needed_by(p) == {Constraint.NIC: 3, Constraint.CPU: 1, Constraint.DISK_WRITE: 1,
                            Constraint.DISK_BAYS: 1}
    assert p.binding_constraint == Constraint.NIC
    assert (p.servers_needed, p.sufficient, p.margin_servers) == (3, False, -1)
    # 2 are available, 3 needed: the plan has 3 and spreads ingest over them
    assert p.servers_in_plan == 3 and p.ingest_mbps_per_server == 40.0


def test_cpu_binding() -> None:
    # 100 streams; a server takes 2 cores x 10 streams = 20: ceil(100 / 20) = 5
    p = plan(cameras=[cams(100, 100)], servers={"cores": 2, "streams_per_core": 10, "count": 5})
    cpu = margin(p, Constraint.CPU)
    assert (cpu.load, cpu.capacity_per_server, cpu.servers_needed) == (100, 20, 5)
    assert cpu.utilisation_pct == 100.0 and cpu.headroom_servers == 0
    assert p.binding_constraint == Constraint.CPU
    assert p.sufficient and p.margin_servers == 0
    assert not p.streams_per_core_is_default
    assert not any("streams_per_core" in w for w in p.warnings)


def test_disk_write_binding() -> None:
    # 40 Mbit/s / 8 = 5 MB/s; a server writes 2 MB/s: ceil(5 / 2) = 3
    p = plan(servers={"disk_write_mbps": 2})
    write = margin(p, Constraint.DISK_WRITE)
    assert (write.load, write.capacity_per_server, write.servers_needed) == (5.0, 2.0, 3)
    assert write.utilisation_pct == 125.0  # 5 / (2 x 2)
    assert p.binding_constraint == Constraint.DISK_WRITE and not p.sufficient


def test_disk_bays_binding() -> None:
    # 100 x 4000 kbit/s = 400 Mbit/s: 30.24 TB / 0.85 / 0.95 = 37.44892 TB of array.
    # 12 bays hold 2 RAID 6 groups of 6 x 1 TB, 4 TB of data each: 8 TB a server.
    p = plan(cameras=[cams(100)], storage={"disk_tb": 1, "disks_per_group": 6},
             servers={"disk_bays": 12, "count": 5})
    bays = margin(p, Constraint.DISK_BAYS)
    assert bays.load == pytest.approx(37.44892, abs=1e-3)
    assert bays.capacity_per_server == 8.0
    assert bays.servers_needed == 5  # ceil(37.449 / 8)
    assert p.binding_constraint == Constraint.DISK_BAYS
    # each of 5 servers: 7.49 TB = ceil(7.49 / 4) = 2 groups = 12 disks, all its bays
    assert p.disks_per_server == 12 and p.disks_installed == 60
    assert p.disks_needed == 60  # ceil(37.449 / 4) = 10 groups x 6


def test_a_raid_group_must_fit_a_server() -> None:
    err = invalid("servers: {count: 1, disk_bays: 8}\nstorage: {raid: 6, disks_per_group: 12}\n")
    assert err.errors[0].field == "servers"
    assert "disk_bays (8)" in err.errors[0].message


# --- N+1, event recording, estimated bitrates --------------------------------------------------

def test_n_plus_one_adds_a_spare() -> None:
    over: dict[str, Any] = {"cameras": [cams(100)],
                            "storage": {"disk_tb": 1, "disks_per_group": 6}}
    # as in test_disk_bays_binding, 5 working servers; with N+1 one more
    p = plan(**over, servers={"disk_bays": 12, "count": 6, "n_plus_one": True})
    assert (p.servers_needed_working, p.spare_servers, p.servers_needed) == (5, 1, 6)
    assert p.sufficient and p.margin_servers == 0
    assert p.servers_working == 5
    # the spare is equipped like the others: 6 x 12 disks
    assert p.disks_installed == 72
    short = plan(**over, servers={"disk_bays": 12, "count": 5, "n_plus_one": True})
    assert not short.sufficient and short.margin_servers == -1
    # utilisation over the 4 working servers that 5 with a spare leave: 37.449 / 32
    assert margin(short, Constraint.DISK_BAYS).utilisation_pct == pytest.approx(117.0, abs=0.1)
    lone = plan(servers={"count": 1, "n_plus_one": True})
    assert margin(lone, Constraint.NIC).utilisation_pct is None
    assert any("only server is the spare" in w for w in lone.warnings)


def test_event_recording_shrinks_storage_not_ingest() -> None:
    p = plan(recording={"mode": "event", "event_fraction": 0.25})
    assert p.ingest_mbps == 40.0
    assert p.recorded_mbps == 10.0  # 40 x 0.25
    assert p.storage_tb_usable_needed == pytest.approx(0.756)  # 3.024 x 0.25
    assert margin(p, Constraint.DISK_WRITE).load == 5.0  # sized for all recording at once
    assert any("event recording" in n for n in p.notes)
    err = invalid("recording: {mode: event}\nservers: {count: 1}\n")
    assert err.errors[0].field == "recording.event_fraction"
    err = invalid("recording: {mode: continuous, event_fraction: 0.5}\nservers: {count: 1}\n")
    assert err.errors[0].field == "recording.event_fraction"


def test_bitrate_estimated_from_activity() -> None:
    # 1920 x 1080 px x 25 fps x 0.08 bit/px = 4 147 200 bit/s -> 4147 kbit/s
    assert BITS_PER_PIXEL[Codec.H264][Activity.MEDIUM] == 0.08
    assert estimate_bitrate_kbps(1920, 1080, 25, Codec.H264, Activity.MEDIUM) == 4147
    # H.265 half of H.264: x 0.04 = 2073.6 -> 2074
    assert estimate_bitrate_kbps(1920, 1080, 25, Codec.H265, Activity.MEDIUM) == 2074
    # MJPEG, busy scene: 1280 x 720 x 10 x 1.0 = 9 216 000 bit/s
    assert estimate_bitrate_kbps(1280, 720, 10, Codec.MJPEG, Activity.HIGH) == 9216
    p = plan(cameras=[cams(10, None, activity="medium")])
    assert p.ingest_mbps == 41.47  # 10 x 4147 kbit/s
    low = plan(cameras=[cams(10, None, activity="low")])
    # each 1920 x 1080 x 25 x 0.04 = 2073.6 -> 2074 kbit/s; x 10 = 20.74 Mbit/s
    assert low.ingest_mbps == 20.74


def test_bitrate_or_activity_not_both_nor_neither() -> None:
    both = invalid(json.dumps(doc(cameras=[cams(1), cams(2, activity="high")])))
    assert [e.field for e in both.errors] == ["cameras.1.activity"]
    assert "not both" in both.errors[0].message
    neither = invalid(json.dumps(doc(cameras=[cams(1, None)])))
    assert neither.errors[0].field == "cameras.0.activity"
    assert "bitrate_kbps" in neither.errors[0].message


# --- retention, cost ---------------------------------------------------------------------------

def test_retention_over_seven_days_warns_without_legal_hold() -> None:
    p = plan(retention_days=30)
    assert p.storage_tb_usable_needed == pytest.approx(12.96)  # 3.024 / 7 x 30
    assert any("DL 11/2009" in w and "legal_hold_reason" in w for w in p.warnings)
    held = plan(retention_days=30, legal_hold_reason="richiesta Procura RG 1234/2026")
    assert not any("DL 11/2009" in w for w in held.warnings)
    assert not any("DL 11/2009" in w for w in plan(retention_days=7).warnings)
    err = invalid(json.dumps(doc(retention_days=400)))
    assert err.errors[0].field == "retention_days"


def test_cost_by_hand() -> None:
    p = plan(cameras=[cams(10), cams(5, new=True)],
             plate_readers=[{"count": 3, "bitrate_kbps": 2000, "new": True},
                            {"count": 2, "bitrate_kbps": 2000}],
             prices={"server_eur": 1000, "disk_eur": 100, "camera_eur": 500,
                     "plate_reader_eur": 2000})
    assert (p.cameras, p.plate_readers, p.streams) == (15, 5, 20)
    assert p.ingest_mbps == 70.0  # 15 x 4000 + 5 x 2000 kbit/s
    # 2 servers x 12 disks (one RAID 6 group each); only the new devices are bought
    assert p.disks_installed == 24
    assert p.cost is not None
    assert p.cost.servers_eur == 2000.0  # 2 x 1000
    assert p.cost.disks_eur == 2400.0  # 24 x 100
    assert p.cost.cameras_eur == 2500.0  # 5 new x 500
    assert p.cost.plate_readers_eur == 6000.0  # 3 new x 2000
    assert p.cost.total_eur == 12900.0
    partial = plan(cameras=[cams(5, new=True)], prices={"server_eur": 1000})
    assert partial.cost is not None
    assert partial.cost.cameras_eur is None and partial.cost.total_eur == 2000.0
    assert any("prices.camera_eur" in w and "5" in w for w in partial.warnings)
    assert plan().cost is None


# --- what-if files -----------------------------------------------------------------------------

YAML_TEXT = """\
cameras:
  - {name: piazza, count: 10, width: 1920, height: 1080, fps: 25, codec: h264,
     bitrate_kbps: 4000}
servers: {count: 2, n_plus_one: false, streams_per_core: 40}
"""


def test_yaml_and_json_files(tmp_path: Path) -> None:
    as_json = json.dumps(parse_whatif(YAML_TEXT).model_dump(mode="json"))
    files = {"a.yaml": YAML_TEXT, "a.yml": YAML_TEXT, "a.json": as_json,
             "yaml.txt": YAML_TEXT, "json.txt": as_json}
    plans = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        plans.append(plan_capacity(load_whatif(tmp_path / name)))
    assert all(p == plans[0] for p in plans)
    assert plans[0].ingest_mbps == 40.0 and plans[0].storage_tb_usable_needed == 3.024


def test_unknown_keys_name_their_path(tmp_path: Path) -> None:
    bad = doc()
    bad["servers"]["nic_gbs"] = 10
    bad["cameras"][0]["bitrate"] = 4000
    bad["colour"] = "blue"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_whatif(path)
    found = {e.field: e.message for e in caught.value.errors}
    assert set(found) == {"servers.nic_gbs", "cameras.0.bitrate", "colour"}
    assert found["servers.nic_gbs"].startswith("Extra inputs are not permitted")
    assert "did you mean 'nic_gbps'" in found["servers.nic_gbs"]
    assert "did you mean 'bitrate_kbps'" in found["cameras.0.bitrate"]
    assert "known keys:" in found["colour"]
    assert str(path) in caught.value.detail and "(and 2 more)" in caught.value.detail


@pytest.mark.parametrize(("text", "field", "words"), [
    ("servers: {count: 1}\nservers: {count: 2}\n", "servers", "duplicate key (line 2)"),
    ('{"servers": {"count": 1, "count": 2}}', "(file)", "'count' appears twice"),
    ("servers: [1\n", "(file)", "not valid YAML"),
    ('{"servers": }', "(file)", "not valid JSON: Expecting value at line 1"),
    ("- 1\n- 2\n", "(file)", "not a list"),
    ("", "(file)", "is empty"),
    ("cameras: []\n", "servers", "Field required"),
    ("servers: {count: 1}\nstorage: {raid: 4}\n", "storage.raid", "Input should be 0, 1"),
    ("servers: {count: 1}\nstorage: {raid: 1, disks_per_group: 4}\n",
     "storage.disks_per_group", "RAID 5 and 6 only"),
])
def test_bad_files_say_where(text: str, field: str, words: str) -> None:
    err = invalid(text)
    assert err.errors[0].field == field
    assert words in err.errors[0].message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_whatif(tmp_path / "missing.yaml")
    assert caught.value.errors[0].field == "(file)" and "cannot read" in caught.value.detail
    (tmp_path / "latin1.yaml").write_bytes(b"name: citt\xe0\n")
    with pytest.raises(InvalidInput):
        load_whatif(tmp_path / "latin1.yaml")


# --- the reference plan ------------------------------------------------------------------------

def test_reference_plan_answers() -> None:
    w = load_whatif(REFERENCE)
    p = plan_capacity(w)
    # 208 existing + 88 new cameras, 21 new plate readers, 3 servers with N+1
    assert (p.cameras, p.plate_readers, p.streams, p.servers_available) == (296, 21, 317, 3)
    assert sum(g.count for g in w.cameras if g.new) == 88
    # 160 x 4096 + 20 x 2048 + 28 x 1280 + 62 x 2048 + 26 x 3072 + 21 x 2048
    #   = 655 360 + 40 960 + 35 840 + 126 976 + 79 872 + 43 008 = 982 016 kbit/s
    assert p.ingest_mbps == 982.016
    assert p.ingest_mbps_per_server == 491.008  # 2 working servers
    # 982.016e6 x 86 400 x 7 / 8 / 1e12 = 74.240 TB; / 0.85 / 0.95 = 91.939 TB of array
    assert p.storage_tb_usable_needed == pytest.approx(74.240, abs=1e-3)
    assert p.storage_tb_array == pytest.approx(91.939, abs=1e-3)
    # per server: NIC 10 Gbit/s x 0.7 = 7000 Mbit/s; CPU 16 x 40 = 640 streams;
    # disk write 800 MB/s; bays 24 // 12 = 2 groups x 10 x 16 TB = 320 TB.
    # Loads over one server: 982/7000 = 0.14, 317/640 = 0.495, 122.75/800 = 0.15,
    # 91.9/320 = 0.29: one working server each, CPU first; + 1 spare = 2 <= 3.
    assert needed_by(p) == dict.fromkeys(Constraint, 1)
    assert p.binding_constraint == Constraint.CPU
    assert (p.servers_needed, p.sufficient, p.margin_servers) == (2, True, 1)
    assert margin(p, Constraint.CPU).utilisation_pct == 24.8  # 317 / (2 x 640)
    assert margin(p, Constraint.NIC).utilisation_pct == 7.0  # 982 / (2 x 7000)
    assert p.streams_per_core == DEFAULT_STREAMS_PER_CORE and p.streams_per_core_is_default
    assert any("recording benchmark" in warning for warning in p.warnings)
    assert p.cost is not None and p.cost.total_eur > 0
    table = render_table(p)
    assert "Ingest / Banda in ingresso" in table and "YES" in table
    assert "CPU streams / Flussi *" in table
    assert json.loads(p.model_dump_json())["sufficient"] is True


def test_table_says_no_when_short() -> None:
    table = render_table(plan(servers={"disk_write_mbps": 2}))
    assert "NO, margin -1" in table and "Disk write / Scrittura *" in table


# --- invariants --------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(count=st.integers(0, 3000), kbps=st.integers(16, 20_000), days=st.integers(1, 30),
       servers=st.integers(0, 12), cores=st.integers(1, 64), nic=st.floats(0.1, 100),
       write=st.floats(1, 5000), disk_tb=st.floats(0.5, 30), n_plus_one=st.booleans(),
       raid=st.sampled_from([0, 1, 5, 6, 10]))
def test_needs_cover_loads(count: int, kbps: int, days: int, servers: int, cores: int,
                           nic: float, write: float, disk_tb: float, n_plus_one: bool,
                           raid: int) -> None:
    p = plan(cameras=[cams(count, kbps)], retention_days=days,
             storage={"raid": raid, "disks_per_group": 8 if raid in (5, 6) else None,
                      "disk_tb": disk_tb},
             servers={"count": servers, "cores": cores, "nic_gbps": nic,
                      "disk_write_mbps": write, "n_plus_one": n_plus_one},
             legal_hold_reason="test")
    for m in p.constraints:
        # enough servers for the load, and not one more than that
        assert m.servers_needed * m.capacity_per_server >= m.load * (1 - 1e-6)
        assert (m.servers_needed - 1) * m.capacity_per_server < m.load + 1e-6
    assert p.sufficient == (servers >= p.servers_needed)
    group_disks = 1 if raid == 0 else 2 if raid in (1, 10) else 8
    data_disks = {0: 1, 1: 1, 10: 1, 5: 7, 6: 6}[raid]
    assert p.disks_needed % group_disks == 0
    assert p.disks_needed / group_disks * data_disks * disk_tb >= p.storage_tb_array - 1e-3
    if p.disks_per_server is not None:
        working = p.servers_in_plan - p.spare_servers
        assert p.disks_per_server * working >= p.disks_needed
        assert p.disks_installed == p.disks_per_server * p.servers_in_plan
    assert math.isclose(p.ingest_mbps, count * kbps / 1000, abs_tol=1e-3)


# --- from the registry -------------------------------------------------------------------------

def test_from_registry(db: Database) -> None:
    stream = {"width": 1920, "height": 1080, "fps": 25, "codec": "h264"}
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id="pl-test", name="Polizia Locale di Prova",
            kind=registry.AgencyKind.POLIZIA_LOCALE))
        for d in (
            device("NVR-1", None, "recording_server"),
            device("NVR-2", None, "recording_server", status="planned"),
            device("NVR-3", None, "recording_server"),
            device("CAM-1", None, **stream, bitrate_kbps=4096),
            device("CAM-2", None, **stream, bitrate_kbps=4096),
            device("CAM-3", None, **stream, bitrate_kbps=4096, status="planned"),
            device("CAM-4", None, **{**stream, "codec": "h265"}),  # no bitrate
            device("CAM-5", None),  # no stream data at all
            device("CAM-6", None, **stream, bitrate_kbps=4096),  # retired below
            device("ANPR-1", None, "camera_anpr", width=2560, height=1440, fps=25,
                   codec="h265", bitrate_kbps=3072, status="maintenance"),
            device("LPR-1", None, "plate_reader", width=1280, height=720, fps=25,
                   codec="h264", bitrate_kbps=2048),
            device("LPR-2", None, "plate_reader", width=1280, height=720, fps=25,
                   codec="h264", bitrate_kbps=2048),
            device("LPR-3", None, "plate_reader", width=1280, height=720, fps=25,
                   codec="h265"),  # no bitrate
        ):
            registry.create_device(conn, CONSOLE, registry.DeviceIn.model_validate(d))
        registry.retire_device(conn, CONSOLE, "CAM-6", "dismessa")
        registry.retire_device(conn, CONSOLE, "NVR-3", "dismesso")

    with db.read() as conn:
        w = from_registry(conn)
        tuned = from_registry(conn, {"servers": {"cores": 8}, "retention_days": 5})
        with pytest.raises(InvalidInput) as caught:
            from_registry(conn, {"servers": {"nic_gbs": 1}})

    assert w.servers.count == 2  # NVR-1 and the planned NVR-2; NVR-3 is retired
    by_name = {g.name: g for g in w.cameras}
    assert by_name["camera 1920x1080 25fps h264 4096 kbps"].count == 2
    planned = by_name["camera 1920x1080 25fps h264 4096 kbps planned"]
    assert planned.count == 1 and planned.new
    assert by_name["camera 1920x1080 25fps h265 bitrate estimated"].activity == Activity.MEDIUM
    assumed = by_name["camera 1920x1080 25fps h264 bitrate estimated (stream data assumed)"]
    assert assumed.count == 1 and assumed.activity == Activity.MEDIUM
    assert by_name["camera_anpr 2560x1440 25fps h265 3072 kbps"].count == 1
    readers = {g.name: g for g in w.plate_readers}
    assert readers["plate_reader 1280x720 25fps h264 2048 kbps"].count == 2
    # 1280 x 720 x 25 x 0.04 (H.265, medium) = 921.6 -> 922 kbit/s
    assert readers["plate_reader 1280x720 25fps h265 bitrate estimated"].bitrate_kbps == 922

    p = plan_capacity(w)
    assert (p.cameras, p.plate_readers, p.servers_available) == (6, 3, 2)
    # 3 x 4096 + 2074 (H.265 est.) + 4147 (assumed H.264 est.) + 3072 + 2 x 2048 + 922
    assert p.ingest_mbps == 26.599
    assert any("1 device(s) have no resolution" in n for n in p.notes)
    assert any("3 device(s) have no bitrate" in n for n in p.notes)

    assert tuned.servers.cores == 8 and tuned.servers.count == 2 and tuned.retention_days == 5
    assert caught.value.errors[0].field == "servers.nic_gbs"
