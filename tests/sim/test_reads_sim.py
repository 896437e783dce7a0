"""The read simulator: plates of the right shapes, posted over real HTTP to the API, hits
raising alarms, outages survived; the demo's reader account and hotlist."""

from __future__ import annotations

import base64
import random
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import CONSOLE, PASSWORD, World
from liveserver import LiveServer, bound
from vigila import hotlists
from vigila.access import Purpose, hasher
from vigila.api import create_app
from vigila.cli import app as cli
from vigila.core import Settings
from vigila.plates import classify, normalise
from vigila.plates.confusion import CONFUSIONS
from vigila.reads.tables import alarms, transits
from vigila.sim.demo import HOTLIST_ID, READER_USERNAME, demo_reads, load_sample_city
from vigila.sim.reads import (
    PlateFactory,
    ReadCounters,
    ReaderInfo,
    ReadSimulator,
    lookalike,
    plate_image,
)
from vigila.store import Database

LISTED = ["GA850BS", "FB123SD", "EZ508KL", "AB12345"]


def serve(world: World, sock: socket.socket) -> LiveServer:
    """The API served on `sock` (bound, loopback) in a thread."""
    return LiveServer(create_app(world.settings, world.db, migrate=False), sock).start()


@pytest.fixture
def live(world: World) -> Iterator[LiveServer]:
    sock = bound()
    server = serve(world, sock)
    try:
        yield server
    finally:
        server.stop()
        sock.close()


def listed(world: World, plates: list[str] = LISTED) -> None:
    with world.db.write() as conn:
        hotlists.create_hotlist(conn, CONSOLE, hotlists.HotlistIn(
            id="rubati", name="Rubati", kind=hotlists.HotlistKind.STOLEN, agency_id="pl-test",
            priority=80, policy=hotlists.LookalikePolicy.ONE_SUBSTITUTION))
        for plate in plates:
            hotlists.add_entry(conn, CONSOLE, "rubati",
                               hotlists.EntryIn(plate=plate, reason="furto denunciato"))


def until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def count(world: World, table: sa.Table) -> int:
    with world.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# --- plates and reads, without a server -----------------------------------------------

def test_the_plates_have_the_shapes_of_the_traffic() -> None:
    factory = PlateFactory(random.Random(5))
    formats: dict[str, int] = {}
    for _ in range(2000):
        plate, country = factory.any()
        [best, *_] = classify(normalise(plate), country)
        formats[best.format_id] = formats.get(best.format_id, 0) + 1
        if best.format_id == "it_car":
            assert not set(plate) & set("IOQU") and plate[0] not in "XY"
    assert set(formats) == {"it_car", "it_motorcycle", "fr_siv", "de", "ch"}, formats
    assert formats["it_car"] > 1500 and formats["it_motorcycle"] > 100
    assert 5 < formats["fr_siv"] + formats["de"] + formats["ch"] < 200
    assert factory.french()[2] == "-"


def test_a_lookalike_is_one_ocr_swap_away() -> None:
    rng = random.Random(1)
    for plate in LISTED:
        misread = lookalike(plate, rng)
        assert misread is not None and misread != plate
        assert sum(a != b for a, b in zip(plate, misread, strict=True)) == 1
        assert CONFUSIONS.distance(plate, misread) == 1
    assert lookalike("AA111AA", rng) is None


def test_reads_follow_the_readers_and_every_nth_is_listed() -> None:
    readers = [ReaderInfo("LPR-1", "outbound", 2), ReaderInfo("LPR-2")]
    sim = ReadSimulator("http://127.0.0.1:9", "token", readers, 10, LISTED, hit_every=5,
                        seed=3, image_share=0.5, lookalike_share=0.1)
    reads = [sim.make_read() for _ in range(200)]
    assert len({r["event_id"] for r in reads}) == 200
    for r in reads[4::5]:
        assert r["plate"] in LISTED
    for r in reads:
        if r["device"] == "LPR-1":
            assert (r["direction"], r["lane"]) == ("outbound", 2)
        assert r["direction"] in ("inbound", "outbound") and r["lane"] in (1, 2)
        assert r["time"].endswith("+00:00") and 0 < r["confidence"] <= 1
    assert {r["direction"] for r in reads if r["device"] == "LPR-2"} == {"inbound", "outbound"}
    misreads = [r["plate"] for r in reads
                if r["plate"] not in LISTED and any(
                    CONFUSIONS.distance(r["plate"], p) == 1 for p in LISTED)]
    assert misreads
    images = [base64.b64decode(r["images"][0]["data"]) for r in reads if "images" in r]
    assert 50 < len(images) < 150
    assert all(i.startswith(b"\xff\xd8\xff") and len(i) < 8000 for i in images)
    assert sim.counters() == ReadCounters(generated=200, hits_sent=40,
                                          lookalikes_sent=len(misreads))
    # Another run with the same seed: the same plates, other event ids.
    again = ReadSimulator("http://127.0.0.1:9", "token", readers, 10, LISTED, 5, seed=3,
                          image_share=0.5, lookalike_share=0.1).make_read()
    assert again["plate"] == reads[0]["plate"] and again["event_id"] != reads[0]["event_id"]


def test_a_plate_image_is_a_small_jpeg() -> None:
    data = plate_image("GA 850BS")
    assert data.startswith(b"\xff\xd8\xff") and len(data) < 5000


# --- over HTTP --------------------------------------------------------------------------

class _SlowFirstAnswer(ReadSimulator):
    """Its first post waits 1.2 s, as a loaded server's first answer may."""

    slowed = False

    def _flush(self, client: Any, *, final: bool = False) -> None:
        if not self.slowed:
            self.slowed = True
            time.sleep(1.2)
        super()._flush(client, final=final)


def test_a_slow_answer_does_not_cut_the_reads_due(world: World, live: LiveServer) -> None:
    # CI saw `vigila sim reads --rate 20 --duration 1` send one read: the loop made reads
    # only between posts, and the first post outlasted the run.
    sim = _SlowFirstAnswer(live.url, world.tokens["reader"], [ReaderInfo("LPR-B1")], 20,
                           seed=5).start()
    time.sleep(1.0)
    sim.stop(drain=True)
    c = sim.counters()
    assert 18 <= c.generated <= 22 and c.stored == c.generated and c.pending == 0, c


def test_simulated_readers_store_transits_and_raise_alarms(world: World, live: LiveServer) -> None:
    listed(world)
    with ReadSimulator(live.url, world.tokens["reader"], [ReaderInfo("LPR-B1", "inbound", 1)],
                       20, LISTED, hit_every=10, seed=11) as sim:
        time.sleep(3)
        until(lambda: sim.counters().sent >= 40, 10)
    c = sim.counters()
    assert not sim.running
    assert c.rejected == 0 and c.errors == 0 and c.dropped == 0, c
    assert c.stored == c.sent - c.duplicates and c.stored >= 40 and c.hits_sent >= 4, c
    with world.db.read() as conn:
        stored = list(conn.execute(sa.select(transits)).mappings())
        raised = list(conn.execute(sa.select(alarms)).mappings())
    assert len(stored) == c.stored
    assert {(t["device_id"], t["direction"], t["lane"]) for t in stored} == {
        ("LPR-B1", "inbound", 1)}
    assert {t["format_id"] for t in stored} >= {"it_car"}
    assert any(t["plate_image"] for t in stored)
    assert len(raised) == c.alarms >= c.hits_sent
    assert {a["plate"] for a in raised} <= set(LISTED)
    assert {a["hotlist_id"] for a in raised} == {"rubati"}
    assert any(a["match"] == "exact" for a in raised)
    hits = {t["id"] for t in stored if t["hit"]}
    assert {a["transit_id"] for a in raised} == hits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_simulator_survives_the_api_going_away(world: World) -> None:
    listed(world)
    sock = bound()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sim = ReadSimulator(url, world.tokens["reader"], ["LPR-B1"], 20, LISTED, hit_every=10,
                        seed=2).start()
    try:
        until(lambda: sim.counters().errors >= 2, 5)  # connection refused: queued, retried
        c = sim.counters()
        assert sim.running and c.sent == 0 and c.pending > 0
        live = serve(world, sock)  # the API comes up: what was queued is delivered
        until(lambda: sim.counters().sent > c.pending and sim.counters().pending < 5, 10)
        live.stop()  # and goes away again
        before = sim.counters().errors
        until(lambda: sim.counters().errors > before, 10)
        assert sim.running
    finally:
        started = time.monotonic()
        sim.stop()
        sock.close()
    assert not sim.running and time.monotonic() - started < 5
    c = sim.counters()
    assert c.rejected == 0 and c.dropped == 0 and c.alarms >= 1, c
    assert count(world, transits) == c.stored == c.sent - c.duplicates
    assert count(world, alarms) == c.alarms


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_waits_for_the_api_and_logs_in(world: World) -> None:
    sock = bound()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with ReadSimulator(url, None, ["LPR-B1"], 20, [], seed=4,
                       credentials=("reader", PASSWORD)) as sim:
        time.sleep(0.5)
        assert sim.running and not sim.ready and sim.counters().generated == 0
        live = serve(world, sock)
        try:
            until(lambda: sim.counters().stored >= 5, 10)
        finally:
            sim.stop()
            live.stop()
            sock.close()
    assert sim.counters().errors == 0 and count(world, alarms) == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_sim_reads_command(world: World, live: LiveServer) -> None:
    listed(world)
    runner = CliRunner()
    args = ["sim", "reads", "--url", live.url, "--username", "reader", "--password", PASSWORD,
            "--rate", "20", "--duration", "1", "--hotlist-plates", "ga 850 bs,FB123SD",
            "--hit-every", "3", "--seed", "1"]
    refused = runner.invoke(cli, args)  # a reader account may not list the readers
    assert refused.exit_code == 2 and "--readers" in refused.output
    done = runner.invoke(cli, [*args, "--readers", "LPR-B1"])
    assert done.exit_code == 0, done.output
    assert "rejected 0" in done.output and "unsent 0" in done.output
    assert count(world, transits) >= 15 and count(world, alarms) >= 5


# --- the demo ---------------------------------------------------------------------------

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_demo_has_a_reader_account_and_a_hotlist(settings: Settings, db: Database,
                                                     tmp_path: Path) -> None:
    creds = load_sample_city(db, hasher(settings), tmp_path, CONSOLE)
    assert creds[READER_USERNAME].startswith("demo-")
    assert load_sample_city(db, hasher(settings), tmp_path, CONSOLE) == creds
    reads = demo_reads(db, creds)
    assert reads.password == creds[READER_USERNAME] and reads.hotlist_id == HOTLIST_ID
    # The 21 plate readers and the cameras that read plates too.
    assert sum(r.id.startswith("LPR-") for r in reads.readers) == 21 < len(reads.readers)
    assert all(r.direction and r.lane for r in reads.readers)
    assert len(reads.hotlist_plates) == 20
    assert all(lookalike(p, random.Random(0)) for p in reads.hotlist_plates)
    with db.write() as conn:
        [hotlist] = hotlists.list_hotlists(conn, CONSOLE)
        page = hotlists.list_entries(conn, CONSOLE, Purpose.parse("verifica demo", "demo"),
                                     HOTLIST_ID, limit=100)
    assert (hotlist.kind, hotlist.agency_id, hotlist.policy, hotlist.entry_count) == (
        "stolen", "pl-prato", "one_substitution", 20)
    assert all(re.search(r"\d\d/\d\d/2026", e.reason or "") for e in page.items)
