"""Recorded video over HTTP: timeline, HLS playlist and grants, MP4 download (both databases).

Real segments (ffmpeg, the recorder's muxer options) are indexed for CAM-A1 (0-6 s, an
outage, 10-12 s), CAM-A2 and CAM-B1. Then: who may read what, with which purpose, and
the audit trail of it; ffmpeg as an HLS client over real HTTP; and headless Chromium's
native HLS player playing the playlist from a page on loopback. ``pytest -s`` prints
how long the browser took.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import PURPOSE, World
from liveserver import serving
from vigila.access.tables import audit_log
from vigila.api import create_app
from vigila.recording import Segment
from vigila.recording import playback as pb
from vigila.recording.index import insert_segment
from vigila.recording.probe import file_digest, probe_duration
from vigila.recording.tables import segments as segment_table

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg and ffprobe are needed")

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
FPS = 25
PROBLEM = "application/problem+json"
HLS = "application/vnd.apple.mpegurl"
CHROMIUM = "chromium"
MUXER = ["-f", "segment", "-segment_time", "2", "-reset_timestamps", "1",
         "-segment_format", "mp4",
         "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def q(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


RANGE = {"start": q(at(-60)), "end": q(at(60))}


# --- video -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 2 s fragmented MP4 segments (320x240, 25 fps, a key frame every second)."""
    folder = tmp_path_factory.mktemp("pieces")
    source = folder / "source.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=320x240:rate={FPS}", "-t", "6", "-c:v", "libx264",
                    "-preset", "veryfast", "-bf", "0", "-g", str(FPS), "-keyint_min", str(FPS),
                    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-f", "h264", str(source)],
                   check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-r", str(FPS), "-i", str(source),
                    "-map", "0:v:0", "-c", "copy", *MUXER, str(folder / "%03d.mp4")],
                   check=True, timeout=60)
    found = sorted(folder.glob("*.mp4"))
    assert len(found) == 3
    return found


@dataclass
class Video:
    segments: dict[str, list[Segment]]
    ids: dict[str, list[int]]  # camera -> segment row ids, in time order


@pytest.fixture
def video(world: World, pieces: list[Path]) -> Video:
    root = world.settings.recordings_root
    plan = {"CAM-A1": [(0, pieces[0]), (2, pieces[1]), (4, pieces[2]), (10, pieces[0])],
            "CAM-A2": [(0, pieces[0])], "CAM-B1": [(0, pieces[0])]}
    found: dict[str, list[Segment]] = {}
    ids: dict[str, list[int]] = {}
    with world.db.write() as conn:
        for camera, items in plan.items():
            for offset, source in items:
                start = at(offset)
                rel = f"{camera}/{start:%Y-%m-%d}/{start:%H}/{start:%M.%S}.mp4"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, root / rel)
                duration = probe_duration(root / rel)
                assert duration is not None
                size, digest = file_digest(root / rel)
                seg = Segment(camera, start, start + timedelta(seconds=duration), size, rel,
                              digest)
                assert insert_segment(conn, seg)
                found.setdefault(camera, []).append(seg)
            ids[camera] = list(conn.execute(
                sa.select(segment_table.c.id).where(segment_table.c.camera_id == camera)
                .order_by(segment_table.c.start)).scalars())
    return Video(found, ids)


# --- helpers -----------------------------------------------------------------------------


def consult(world: World, who: str, path: str, **params: str) -> httpx.Response:
    return world.client.get(path, params=params, headers=world.headers(who, **PURPOSE))


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


def audit_rows(world: World, action: str) -> list[dict[str, Any]]:
    with world.db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.seq)).mappings().all()
    return [dict(r) for r in rows]


def playlist(world: World, camera: str = "CAM-A1", who: str = "operator",
             **params: str) -> httpx.Response:
    return consult(world, who, f"/api/cameras/{camera}/playlist.m3u8", **(params or RANGE))


def uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# --- timeline ----------------------------------------------------------------------------


def test_timeline_spans_gaps_and_audit(world: World, video: Video) -> None:
    r = consult(world, "operator", "/api/cameras/CAM-A1/timeline", start=q(at(-10)),
                end="2026-11-25T11:01:00+01:00")  # any offset; answered in UTC
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["camera_id"], body["start"], body["end"]) == (
        "CAM-A1", "2026-11-25T09:59:50Z", "2026-11-25T10:01:00Z")
    kinds = [(e["kind"], e["start"], e["end"], e["segments"], e["reason"])
             for e in body["entries"]]
    assert kinds == [("span", "2026-11-25T10:00:00Z", "2026-11-25T10:00:06Z", 3, ""),
                     ("gap", "2026-11-25T10:00:06Z", "2026-11-25T10:00:10Z", 0, "no recording"),
                     ("span", "2026-11-25T10:00:10Z", "2026-11-25T10:00:12Z", 1, "")]
    assert body["recorded_seconds"] == pytest.approx(8.0, abs=0.01)
    [entry] = audit_rows(world, "recording.timeline")
    assert (entry["actor"], entry["resource"], entry["outcome"]) == (
        "operator", "camera/CAM-A1", "ok")
    assert (entry["purpose"], entry["reference"]) == (PURPOSE["text"], PURPOSE["reference"])
    assert entry["detail"]["start"] == "2026-11-25T09:59:50.000Z"


def test_timeline_of_a_range_without_video_is_empty_and_audited(world: World,
                                                                 video: Video) -> None:
    r = consult(world, "operator", "/api/cameras/CAM-A1/timeline", start=q(at(3600)),
                end=q(at(7200)))
    assert r.status_code == 200, r.text
    assert (r.json()["entries"], r.json()["recorded_seconds"]) == ([], 0)
    [entry] = audit_rows(world, "recording.timeline")
    assert entry["outcome"] == "empty"


@pytest.mark.parametrize(("params", "field"), [
    ({"start": q(at(10)), "end": q(at(0))}, "end"),
    ({"start": q(at(0)), "end": q(at(0))}, "end"),
    ({"start": "2026-11-25T10:00:00", "end": q(at(60))}, "start"),  # no offset
    ({"start": q(at(0)), "end": q(at(31 * 86400 + 1))}, "end"),
    ({"start": "0001-01-01T00:30:00+01:00", "end": q(at(0))}, "start"),
    ({"start": "yesterday", "end": q(at(0))}, "query.start"),
    ({"end": q(at(0))}, "query.start"),
])
def test_timeline_range_errors_name_the_field(world: World, params: dict[str, str],
                                              field: str) -> None:
    r = consult(world, "operator", "/api/cameras/CAM-A1/timeline", **params)
    assert_problem(r, 422, field)
    assert audit_rows(world, "recording.timeline") == []


def test_playlist_and_download_have_their_own_limits(world: World) -> None:
    day = {"start": q(at(0)), "end": q(at(86400 + 1))}
    assert "24 hours" in assert_problem(playlist(world, **day), 422, "end")["detail"]
    r = consult(world, "operator", "/api/cameras/CAM-A1/recording.mp4", start=q(at(0)),
                end=q(at(3601)))
    assert "at most 1 hour after" in assert_problem(r, 422, "end")["detail"]


# --- who may read ------------------------------------------------------------------------

READS = ("timeline", "playlist.m3u8", "recording.mp4")


@pytest.mark.parametrize("route", READS)
def test_rights_purpose_and_zone_scope(world: World, video: Video, route: str) -> None:
    window = {"start": q(at(0)), "end": q(at(1))}
    # No personal.read: refused before anything is looked up.
    body = assert_problem(consult(world, "admin", f"/api/cameras/CAM-A1/{route}", **window), 403)
    assert "personal.read" in body["detail"]
    # No purpose: 428, the same for every camera.
    r = world.client.get(f"/api/cameras/CAM-A1/{route}", params=window,
                         headers=world.headers("operator"))
    assert_problem(r, 428)
    # Another zone's camera answers as a camera that does not exist.
    hidden = consult(world, "operator_a", f"/api/cameras/CAM-B1/{route}", **window)
    missing = consult(world, "operator_a", f"/api/cameras/CAM-Z1/{route}", **window)
    assert_problem(hidden, 404)
    assert hidden.text.replace("CAM-B1", "<ID>") == missing.text.replace("CAM-Z1", "<ID>")
    assert hidden.headers == missing.headers
    assert_problem(consult(world, "operator_a", f"/api/cameras/LPR-B1/{route}", **window), 404)
    # Nothing read, nothing audited.
    assert audit_rows(world, "recording." + {"timeline": "timeline",
                                             "playlist.m3u8": "playback",
                                             "recording.mp4": "download"}[route]) == []
    # The control: with every zone, CAM-B1 is there.
    assert consult(world, "operator", f"/api/cameras/CAM-B1/{route}", **window).status_code == 200


# --- playlist and grants -----------------------------------------------------------------


def test_playlist_dates_segments_and_audit(world: World, video: Video) -> None:
    r = playlist(world)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == HLS
    assert r.headers["cache-control"] == "no-store"
    text = r.text
    dates = re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.+)$", text, re.M)
    assert [datetime.fromisoformat(d) for d in dates] == [
        s.start for s in video.segments["CAM-A1"]]
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    grant = r.headers["vigila-grant"]
    assert uris(text) == [f"segments/{i}.ts?grant={grant}" for i in video.ids["CAM-A1"]]
    expires = datetime.fromisoformat(r.headers["vigila-grant-expires"])
    assert timedelta(hours=1, minutes=59) < expires - datetime.now(UTC) <= pb.GRANT_TTL

    # A player without headers: the same playlist, and each segment as MPEG-TS.
    again = world.client.get("/api/cameras/CAM-A1/granted.m3u8", params={"grant": grant})
    assert (again.status_code, again.headers["content-type"], again.text) == (200, HLS, text)
    for uri in uris(text):
        seg = world.client.get(f"/api/cameras/CAM-A1/{uri}")
        assert seg.status_code == 200, seg.text
        assert seg.headers["content-type"] == "video/mp2t"
        assert seg.content[0] == 0x47  # the MPEG-TS sync byte
    # Audited once, as playback, with the purpose: fetching segments adds nothing.
    [entry] = audit_rows(world, "recording.playback")
    assert (entry["actor"], entry["resource"], entry["purpose"], entry["reference"]) == (
        "operator", "camera/CAM-A1", PURPOSE["text"], PURPOSE["reference"])
    assert (entry["detail"]["segments"], entry["outcome"]) == (4, "ok")


def test_a_grant_covers_its_camera_and_range_only(world: World, video: Video) -> None:
    a1 = playlist(world, start=q(at(0)), end=q(at(3))).headers["vigila-grant"]  # 2 segments
    a2_segment, b1_segment = video.ids["CAM-A2"][0], video.ids["CAM-B1"][0]
    first, second, third, _ = video.ids["CAM-A1"]
    ok = world.client.get(f"/api/cameras/CAM-A1/segments/{second}.ts", params={"grant": a1})
    assert ok.status_code == 200
    refusals = {
        f"/api/cameras/CAM-A2/segments/{a2_segment}.ts": "another camera",
        f"/api/cameras/CAM-A1/segments/{a2_segment}.ts": "does not cover",
        f"/api/cameras/CAM-B1/segments/{b1_segment}.ts": "another camera",
        f"/api/cameras/CAM-A1/segments/{third}.ts": "does not cover",  # outside the range
        "/api/cameras/CAM-A1/segments/999999.ts": "does not cover",
        "/api/cameras/CAM-A2/granted.m3u8": "another camera",
    }
    for path, why in refusals.items():
        r = world.client.get(path, params={"grant": a1})
        assert why in assert_problem(r, 403)["detail"], path
    body, mac = a1.split(".")
    for forged in (f"{body}.{mac[::-1]}", f"{body[:-4]}AAAA.{mac}", "x" * 1024):
        r = world.client.get(f"/api/cameras/CAM-A1/segments/{first}.ts",
                             params={"grant": forged})
        assert_problem(r, 403)
    for missing in ({}, {"grant": ""}):  # no grant is no credential: 401, like no session
        assert_problem(world.client.get(f"/api/cameras/CAM-A1/segments/{first}.ts",
                                        params=missing), 401)


def test_expired_grant_and_ended_session_are_refused(world: World, video: Video) -> None:
    r = playlist(world)
    grant = pb.open_grant(pb.grant_key(world.settings.keys_dir), r.headers["vigila-grant"],
                          datetime.now(UTC))
    first = video.ids["CAM-A1"][0]
    url = f"/api/cameras/CAM-A1/segments/{first}.ts"
    key = pb.grant_key(world.settings.keys_dir)
    expired = pb.sign_grant(key, pb.Grant(grant.user_id, grant.session, grant.camera,
                                          grant.start, grant.end, grant.anchor,
                                          datetime.now(UTC) - timedelta(seconds=1)))
    assert "expired" in assert_problem(world.client.get(url, params={"grant": expired}),
                                       403)["detail"]
    assert world.client.get(url, params={"grant": r.headers["vigila-grant"]}).status_code == 200
    # The grant lives no longer than the session it was issued to.
    out = world.client.post("/api/auth/logout", headers=world.headers("operator"))
    assert out.status_code == 204
    r2 = world.client.get(url, params={"grant": r.headers["vigila-grant"]})
    assert "session" in assert_problem(r2, 403)["detail"]


def test_a_grant_ends_when_the_zone_is_taken_away(world: World, video: Video) -> None:
    r = playlist(world, who="operator_a")
    assert r.status_code == 200, r.text
    url = f"/api/cameras/CAM-A1/segments/{video.ids['CAM-A1'][0]}.ts"
    grant = {"grant": r.headers["vigila-grant"]}
    assert world.client.get(url, params=grant).status_code == 200
    # Moved to zona-b only: the old grant no longer reaches zona-a's camera.
    change = world.client.patch(f"/api/users/{world.user_ids['operator_a']}",
                                json={"zone_ids": ["zona-b"]}, headers=world.headers("admin"))
    assert change.status_code == 200, change.text
    assert_problem(world.client.get(url, params=grant), 403)


def test_empty_playlist_is_404_and_audited(world: World, video: Video) -> None:
    r = playlist(world, start=q(at(3600)), end=q(at(7200)))
    body = assert_problem(r, 404)
    assert body["detail"] == ("no recording of camera 'CAM-A1' between "
                              "2026-11-25T11:00:00.000Z and 2026-11-25T12:00:00.000Z")
    [entry] = audit_rows(world, "recording.playback")
    assert (entry["outcome"], entry["detail"]["segments"]) == ("empty", 0)


# --- download ----------------------------------------------------------------------------


def test_download_is_cut_on_the_key_frame_before_the_start(world: World, video: Video,
                                                           tmp_path: Path) -> None:
    r = consult(world, "investigator", "/api/cameras/CAM-A1/recording.mp4",
                start=q(at(2.5)), end=q(at(5)))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["content-disposition"] == (
        'attachment; filename="CAM-A1_20261125T100002Z_20261125T100005Z.mp4"')
    out = tmp_path / "download.mp4"
    out.write_bytes(r.content)
    assert file_digest(out) == (len(r.content), r.headers["vigila-sha256"])
    decode = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(out), "-f", "null",
                             "-"], capture_output=True, text=True, timeout=60, check=False)
    assert (decode.returncode, decode.stderr) == (0, "")
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
         "packet=pts_time,flags:format=duration", str(out)],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    packets = info["packets"]
    assert "K" in packets[0]["flags"]
    # From the key frame at 2 s (the start asked is 2.5 s) to the end asked, 5 s.
    assert len(packets) == 3 * FPS
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.05)
    [entry] = audit_rows(world, "recording.download")
    assert (entry["actor"], entry["purpose"], entry["outcome"]) == (
        "investigator", PURPOSE["text"], "ok")
    assert (entry["detail"]["clip_start"], entry["detail"]["start"]) == (
        "2026-11-25T10:00:02.000Z", "2026-11-25T10:00:02.500Z")
    assert entry["detail"]["sha256"] == r.headers["vigila-sha256"]
    assert os.listdir(world.settings.data_dir / "tmp") == []  # the cut file is gone


def test_download_without_video_is_404_and_audited(world: World, video: Video) -> None:
    r = consult(world, "operator", "/api/cameras/CAM-A1/recording.mp4", start=q(at(7)),
                end=q(at(9)))  # inside the outage
    assert "no recording of camera 'CAM-A1'" in assert_problem(r, 404)["detail"]
    [entry] = audit_rows(world, "recording.download")
    assert entry["outcome"] == "empty"
    assert os.listdir(world.settings.data_dir / "tmp") == []


# --- over real HTTP: ffmpeg and Chromium as players --------------------------------------


@dataclass
class LiveServer:
    url: str
    reports: queue.Queue[dict[str, Any]]


PAGE = """<!doctype html><meta charset="utf-8"><title>playback</title>
<video id="v" muted autoplay playsinline></video>
<script>
const v = document.getElementById("v");
const started = performance.now();
function say(what) {
  fetch("/test/report?" + new URLSearchParams({what, t: v.currentTime, rate: v.playbackRate,
        ms: Math.round(performance.now() - started),
        can: v.canPlayType("application/vnd.apple.mpegurl"),
        error: v.error ? v.error.code + " " + v.error.message : ""}));
}
say("page");
for (const name of ["loadedmetadata", "playing", "ended", "error", "stalled"])
  v.addEventListener(name, () => say(name));
let last = 0;
v.addEventListener("timeupdate", () => {
  if (v.currentTime - last < 0.5) return;
  last = v.currentTime;
  say("time");
  if (v.currentTime >= 1) v.playbackRate = 4;  // the first second at 1x; the rest quickly
});
v.src = decodeURIComponent(location.hash.slice(1));
v.play().catch((e) => say("play refused: " + e));
</script>
"""


@pytest.fixture
def live(world: World) -> Iterator[LiveServer]:
    """The API (plus a test page) served by uvicorn on a free loopback port, in a thread."""
    app = create_app(world.settings, world.db, migrate=False)
    reports: queue.Queue[dict[str, Any]] = queue.Queue()

    @app.get("/test/player.html", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/test/report", include_in_schema=False)
    def report(request: Request) -> Response:
        reports.put({**request.query_params, "at": time.monotonic()})
        return Response(status_code=204)

    with serving(app) as url:
        yield LiveServer(url, reports)


def test_ffmpeg_reads_the_whole_playlist_over_http(world: World, video: Video,
                                                   live: LiveServer) -> None:
    headers = "".join(f"{k}: {v}\r\n" for k, v in world.headers("operator", **PURPOSE).items())
    url = f"{live.url}/api/cameras/CAM-A1/playlist.m3u8?start={RANGE['start']}&end={RANGE['end']}"
    # Every frame decoded (framemd5: one line per frame), none invented for the outage.
    run = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-headers", headers, "-i", url,
                          "-fps_mode", "passthrough", "-f", "framemd5", "-"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert (run.returncode, run.stderr) == (0, "")
    base = re.search(r"^#tb 0: (\d+)/(\d+)$", run.stdout, re.M)
    assert base is not None
    tick = int(base[1]) / int(base[2])
    pts = [int(line.split(",")[2]) * tick for line in run.stdout.splitlines()
           if line and not line.startswith("#")]
    segs = video.segments["CAM-A1"]
    assert len(pts) / FPS == pytest.approx(sum(s.duration for s in segs), abs=0.001)  # 8 s
    # The timestamps keep the wall clock: the 4 s outage is there, between 6 s and 10 s.
    assert pts[-1] + 1 / FPS - pts[0] == pytest.approx(
        (segs[-1].end - segs[0].start).total_seconds(), abs=0.001)
    jumps = [b - a for a, b in itertools.pairwise(pts) if b - a > 1.5 / FPS]
    assert jumps == [pytest.approx(4 + 1 / FPS, abs=0.001)]


def test_chromium_plays_the_playlist_natively(world: World, video: Video, live: LiveServer,
                                              tmp_path: Path) -> None:
    chromium = shutil.which(CHROMIUM)
    assert chromium is not None, (
        "Chromium is not installed: the browser test needs it (Debian: apt-get install "
        "chromium); it is not skipped, since playback in a real browser is what it proves")
    r = playlist(world)
    assert r.status_code == 200, r.text
    src = f"/api/cameras/CAM-A1/granted.m3u8?grant={r.headers['vigila-grant']}"
    page = f"{live.url}/test/player.html#{src}"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--mute-audio",
               "--autoplay-policy=no-user-gesture-required", page]
    launched = time.monotonic()
    log = tmp_path / "chromium.log"
    with log.open("wb") as sink:
        browser = subprocess.Popen(command, stdout=sink, stderr=sink, start_new_session=True)
    seen: list[dict[str, Any]] = []
    try:
        deadline = launched + 45
        while not any(e["what"] in ("ended", "error") for e in seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no end of playback in 45 s: {seen}\n{log.read_text()[-3000:]}"
            try:
                seen.append(live.reports.get(timeout=min(left, 1)))
            except queue.Empty:
                assert browser.poll() is None, (
                    f"Chromium exited ({browser.returncode}): {seen}\n{log.read_text()[-3000:]}")
    finally:
        os.killpg(browser.pid, signal.SIGTERM)  # its own session: the browser and its helpers
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
    whats = [e["what"] for e in seen]
    assert seen[0]["can"] in ("maybe", "probably"), "no native HLS in this Chromium"
    assert "error" not in whats, seen
    playing = next(e for e in seen if e["what"] == "playing")
    past_one = next(e for e in seen if e["what"] == "time" and float(e["t"]) >= 1.0)
    ended = next(e for e in seen if e["what"] == "ended")
    # Played to the end, across the outage's discontinuity: 8 s of video, no more.
    assert float(ended["t"]) == pytest.approx(8.0, abs=0.1)
    page_at = next(e for e in seen if e["what"] == "page")["at"]
    print(f"\nChromium: page {page_at - launched:.2f} s after launch; playing "
          f"{playing['at'] - page_at:.2f} s after the page; currentTime past 1 s after "
          f"{past_one['at'] - page_at:.2f} s; ended (8 s of video, 4x after the first "
          f"second) after {ended['at'] - page_at:.2f} s")


# --- the document ------------------------------------------------------------------------

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


def test_fuzz_playback_routes_as_a_user_who_may_read_video(world: World, video: Video) -> None:
    """The whole-API fuzz sends these as users without personal.read (403 at once); here
    an operator reaches the handlers, with real video indexed and a real grant known."""
    grant = playlist(world).headers["vigila-grant"]
    doc = world.client.get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config())
    schema.app = world.client.app
    headers = world.headers("operator", **PURPOSE)
    client = ASGIClient(world.client.app)
    settings = hypothesis.settings(
        deadline=None, derandomize=True, database=None, max_examples=25,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck))
    sent = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        if not operation.path.startswith("/api/cameras/"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)
            if mode is GenerationMode.POSITIVE:
                known = operation.as_strategy(
                    headers=headers, path_parameters={"camera_id": "CAM-A1"},
                    **({"query": {"grant": grant}} if "segment" in operation.path
                       or "granted" in operation.path else {}))
                strategy = strategy | known

            @settings
            @hypothesis.given(case=strategy)
            def fuzz(case: schemathesis.Case) -> None:
                nonlocal sent
                response = case.call(session=client)
                case.validate_response(response, checks=CHECKS)
                sent += 1

            fuzz()
    assert sent >= 150
