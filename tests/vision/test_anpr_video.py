"""`watch` on a simulated camera whose clip shows generated Italian plates passing: one read
per pass reaches the plate-reads pipeline, and the listed plate raises its alarm."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import PURPOSE, World, device
from vigila.reads.tables import transits
from vigila.sim.cameras import CameraSimulator
from vigila.sim.plate_images import traffic_clip, traffic_schedule
from vigila.vision.anpr import AnprEngine
from vigila.vision.anpr.video import Pass, PlateTracker, ReadPoster, StreamError, watch

PLATES = ["FE123AB", "GK456CD"]
WANTED = "GK456CD"


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    # The reads' storage is tested on both databases elsewhere; here the stream matters.
    target = tmp_path / "vigila.db"
    target.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CameraSimulator, float]]:
    cache = tmp_path_factory.mktemp("clips")
    clip = traffic_clip(cache, PLATES, seed=3)
    # The watcher may join the loop anywhere: one whole loop and the pass it broke into.
    loop = 6.0 * len(PLATES)  # traffic_clip's default length
    seconds = loop + max(p.end - p.start for p in traffic_schedule(PLATES)) + 2.0
    with CameraSimulator(["CAM-A1"], main_clip=clip, sub_streams=False, cache_dir=cache) as sim:
        yield sim, seconds


def _stolen(world: World, plate: str) -> None:
    r = world.client.post("/api/hotlists", headers=world.headers("supervisor"), json={
        "id": "furti", "name": "Veicoli rubati", "kind": "stolen", "agency_id": "pl-test",
        "priority": 90, "policy": "one_substitution"})
    assert r.status_code == 201, r.text
    r = world.client.post("/api/hotlists/furti/entries", headers=world.headers("supervisor"),
                          json={"plate": plate, "reason": "furto denunciato"})
    assert r.status_code == 201, r.text


def test_each_pass_is_one_read_and_the_wanted_plate_raises_an_alarm(
        world: World, camera: tuple[CameraSimulator, float]) -> None:
    sim, seconds = camera
    _stolen(world, WANTED)
    poster = ReadPoster(world.client, world.tokens["reader"], "LPR-B1")
    passes = watch(AnprEngine(), sim.url("CAM-A1"), poster, fps=2, width=960,
                   duration=seconds)
    posted = [s["plate"] for s in poster.sent]
    assert passes == len(poster.sent)
    assert sorted(set(posted)) == sorted(PLATES), poster.sent
    assert len(posted) <= 2 * len(PLATES)  # a pass cut by the window's ends may repeat once
    assert all(s["status"] == 201 for s in poster.sent), poster.sent
    hits = [s for s in poster.sent if s["plate"] == WANTED]
    assert hits[0]["answer"]["alarms"], hits[0]
    misses = [s for s in poster.sent if s["plate"] != WANTED]
    assert not misses[0]["answer"]["alarms"]
    r = world.client.get("/api/alarms", headers=world.headers("operator", **PURPOSE))
    assert r.status_code == 200 and r.json()["items"][0]["plate"] == WANTED, r.text
    # Each transit carries its pass's best crop, stored as the plate image.
    with world.db.read() as conn:
        stored = conn.execute(sa.select(transits.c.plate, transits.c.plate_image_sha256)
                              ).all()
    assert sorted({p for p, _ in stored}) == sorted(PLATES)
    assert all(sha and len(sha) == 64 for _, sha in stored)


def test_an_unreachable_stream_is_a_clear_error() -> None:
    with pytest.raises(StreamError, match=r"refused|timed out|Connection"):
        watch(AnprEngine(), "rtsp://user:secret@127.0.0.1:9/none", lambda p: None,
              duration=1)
    try:
        watch(AnprEngine(), "rtsp://user:secret@127.0.0.1:9/none", lambda p: None)
    except StreamError as exc:
        assert "secret" not in exc.detail


def _read(text: str, x: int, conf: float = 0.9, kind: str = "car") -> object:
    from vigila.vision.anpr import PlateRead

    return PlateRead(text, conf, (x, 400, 150, 40), "IT", kind, f"it_{kind}", text)


def test_tracker_votes_and_splits_passes() -> None:
    tracker = PlateTracker(linger=1.0, min_votes=2)
    t0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    seen = [("AB123CD", 100), ("AB123CD", 130), ("AB128CD", 160), ("AB123CD", 190)]
    out: list[Pass] = []
    for i, (text, x) in enumerate(seen):
        out += tracker.update(i * 0.25, t0 + timedelta(seconds=i * 0.25), [_read(text, x)])
    assert out == []
    # Unseen for more than `linger`: the pass ends, its text is the vote's.
    out += tracker.update(3.0, t0 + timedelta(seconds=3), [_read("ZZ999ZZ", 900, 0.8)])
    assert [(p.text, p.votes, p.agreeing) for p in out] == [("AB123CD", 4, 3)]
    # A single glimpse is not a pass.
    assert tracker.flush() == []


def test_a_pass_read_with_little_confidence_is_dropped() -> None:
    # The simulated street's sign "L. 224351904" half hidden by a car reads "51904", a
    # format-valid 1993 moped tag, at ~0.18 in a few frames: no transit is made of it.
    tracker = PlateTracker(linger=1.0, min_votes=2)
    t0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    for i, conf in enumerate((0.17, 0.19, 0.18)):
        at = t0 + timedelta(seconds=i * 0.5)
        assert tracker.update(i * 0.5, at, [_read("51904", 700, conf)]) == []
    assert tracker.flush() == []
    for i, conf in enumerate((0.3, 0.55)):  # a real plate first read small, then near
        tracker.update(i * 0.5, t0, [_read("FE123AB", 400, conf)])
    assert [(p.text, round(p.confidence, 2)) for p in tracker.flush()] == [("FE123AB", 0.55)]


def test_a_signs_fragments_join_the_sign_and_are_not_a_pass() -> None:
    # Without the sign's own readings "51904" would be a pass (two votes at 0.4).
    sign = [_read("L224351904", 700, 0.35, "generic")]
    fragment = [_read("51904", 720, 0.4, "moped")]
    seen = [sign, [*sign, _read("AB123CD", 100)], [*fragment, _read("AB123CD", 120)],
            fragment, sign, [_read("224351904", 705, 0.34, "generic")]]
    t0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)

    def passes(tracker: PlateTracker, frames: list[list[object]]) -> list[str]:
        out: list[Pass] = []
        for i, plates in enumerate(frames):
            out += tracker.update(i * 0.5, t0 + timedelta(seconds=i * 0.5), plates)
        return sorted(p.text for p in out + tracker.flush())

    assert passes(PlateTracker(linger=1.0), seen) == ["AB123CD"]
    assert passes(PlateTracker(linger=1.0), [[], [], fragment, fragment]) == ["51904"]
    # A reader that wants every text (`accept_generic`) gets the sign, voted whole.
    everything = PlateTracker(linger=1.0, min_confidence=0, accept_generic=True)
    assert passes(everything, seen) == ["AB123CD", "L224351904"]


def test_the_recorder_reads_plates_on_a_camera_registered_for_it(
        world: World, camera: tuple[CameraSimulator, float], tmp_path: Path) -> None:
    """`vigila recording run --read-plates`: a camera_anpr with anpr_vendor 'vigila' is
    recorded and, beside it, read; its passes arrive as that camera's transits over HTTP."""
    import httpx

    from liveserver import serving
    from vigila import recording
    from vigila.vision.anpr.video import StreamReader

    sim, seconds = camera
    url = sim.url("CAM-A1")
    r = world.client.post("/api/devices", headers=world.headers("admin"), json=device(
        "CAM-LPR", "zona-a", "camera_anpr", anpr_vendor="vigila", main_stream_url=url,
        recording_server_id="NVR-A"))
    assert r.status_code == 201, r.text
    settings = replace(world.settings, recordings_dir=tmp_path / "rec")
    readers: list[StreamReader] = []
    with serving(world.client.app) as api, httpx.Client(base_url=api) as client:
        def start(camera_id: str, stream: str) -> StreamReader:
            poster = ReadPoster(client, world.tokens["reader"], camera_id)
            readers.append(StreamReader(AnprEngine(), camera_id, stream, poster, fps=2,
                                        width=960))
            return readers[-1]

        service = recording.RecordingService(
            world.db, settings, server_id="NVR-A", options=recording.ServiceOptions(
                segment_seconds=2, plate_reading=start, streams={"CAM-LPR": url}))
        with service:
            assert [r.camera for r in readers] == ["CAM-LPR"]
            deadline = time.monotonic() + seconds + 30
            while time.monotonic() < deadline and len(
                    {s["plate"] for s in poster_of(readers[0]).sent}) < len(PLATES):
                time.sleep(0.5)
            assert "CAM-LPR" in service.cameras  # recorded as well as read
        assert not readers[0].running  # stopped with the service
    with world.db.read() as conn:
        stored = conn.execute(sa.select(transits.c.plate).where(
            transits.c.device_id == "CAM-LPR")).scalars().all()
    assert sorted(set(stored)) == sorted(PLATES)


def poster_of(reader: object) -> ReadPoster:
    sink = reader.sink  # type: ignore[attr-defined]
    assert isinstance(sink, ReadPoster)
    return sink


def _pass(text: str, second: int) -> Pass:
    at = datetime(2026, 12, 4, 8, 0, second, tzinfo=UTC)
    return Pass(text, 0.9, 3, 3, at, at, "IT", "car", b"", (0, 0, 100, 30))


def test_reads_the_api_cannot_take_are_kept_and_sent_once(world: World) -> None:
    """The API down for two passes: they wait in the backlog and go with the next one,
    each stored once (the event id makes a repeat a duplicate)."""
    import httpx

    from liveserver import LiveServer, bound

    sock = bound()  # bound, not listening: connections are refused until the server starts
    port = sock.getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        poster = ReadPoster(client, world.tokens["reader"], "LPR-B1", backlog=2)
        poster(_pass("AA111AA", 1))
        poster(_pass("BB222BB", 2))
        poster(_pass("CC333CC", 3))  # the backlog holds two: AA111AA is dropped
        assert [b["plate"] for b in poster.pending] == ["BB222BB", "CC333CC"]
        assert not poster.sent
        live = LiveServer(world.client.app, sock).start()
        try:
            poster(_pass("DD444DD", 4))
            poster(_pass("DD444DD", 4))  # the same pass again: a duplicate, not a transit
        finally:
            live.stop()
            sock.close()
    assert not poster.pending
    assert [(s["plate"], s["status"]) for s in poster.sent] == [
        ("BB222BB", 201), ("CC333CC", 201), ("DD444DD", 201), ("DD444DD", 200)]
    with world.db.read() as conn:
        stored = sorted(conn.execute(sa.select(transits.c.plate)).scalars())
    assert stored == ["BB222BB", "CC333CC", "DD444DD"]


def test_a_stream_reader_stops_at_once(camera: tuple[CameraSimulator, float]) -> None:
    from vigila.vision.anpr.video import StreamReader

    sim, _ = camera
    reader = StreamReader(AnprEngine(), "CAM-A1", sim.url("CAM-A1"), lambda p: None, fps=0.2)
    time.sleep(3)  # probed, ffmpeg running, waiting for its next frame
    started = time.monotonic()
    reader.stop()
    assert not reader.running and time.monotonic() - started < 2
    assert reader.last_error is None
