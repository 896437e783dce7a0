"""Plates in a camera's stream: sample a few frames a second, track, vote, one read a pass.

`frames` has ffmpeg decode the stream (RTSP over TCP, or a file) and hand over only a few
frames a second, cropped to a region of interest and scaled, as raw BGR: the decoder
still follows every frame (H.264 needs them), but nothing else touches the ones skipped.
Point it at a camera's sub-stream where the plates are large enough.

`PlateTracker` joins the plates read in successive frames into tracks (a reading joins
the track whose last box it overlaps, or whose text it shares); a track unseen for
`linger` seconds is a finished pass. Its text is the vote of its readings, each weighted
by its confidence, so one misread frame among five good ones loses; its crop is the
frame region of its most confident reading. A pass with fewer than `min_votes` readings
is dropped as a glimpse, and one whose voted confidence is under `min_confidence` as a
misreading. Texts no plate format admits (kind generic: shop signs, phone numbers) are
tracked too, so that a sign's fragments join the sign's own track and lose its vote: a car
hiding part of a sign's "L. 224351904" leaves "51904", which a format admits (a 1993 moped
tag); a pass whose winning text is generic is not a plate, unless `accept_generic`.

`ReadPoster` sends each pass into the plate-reads pipeline as a generic reader would
(`POST /api/reads`, with the crop), so hotlist matching, alarms, minimisation and
forwarding treat it like any reader's transit.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import cv2
import httpx
import numpy as np

from vigila.core import VigilaError
from vigila.core.errors import InvalidInput
from vigila.vision.anpr.detect import Image
from vigila.vision.anpr.engine import AnprEngine, PlateRead, share_inside

log = logging.getLogger(__name__)


class StreamError(VigilaError):
    status = 502
    title = "Stream unavailable"
    slug = "stream-unavailable"


Roi = tuple[int, int, int, int]


# The lowest correct reading on the real US/Brazil dev photos was 0.24, their median 0.82-0.90.
MIN_PASS_CONFIDENCE = 0.25


@dataclass
class Pass:
    """One vehicle's plate, voted over the frames it was read in."""

    text: str
    confidence: float  # the winning text's share of the votes times its best confidence
    votes: int  # readings in the track
    agreeing: int  # readings of the winning text
    first_seen: datetime
    last_seen: datetime
    country: str
    kind: str
    crop_jpeg: bytes
    box: tuple[int, int, int, int]


@dataclass
class _Track:
    box: tuple[int, int, int, int]
    last_t: float
    first_at: datetime
    last_at: datetime
    weights: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kinds: dict[str, str] = field(default_factory=dict)
    best: PlateRead | None = None
    crop: bytes = b""


class PlateTracker:
    def __init__(self, linger: float = 1.5, min_votes: int = 2,
                 min_confidence: float = MIN_PASS_CONFIDENCE,
                 accept_generic: bool = False) -> None:
        self.linger = linger
        self.min_votes = min_votes
        self.min_confidence = min_confidence
        self.accept_generic = accept_generic
        self._tracks: list[_Track] = []

    def update(self, t: float, at: datetime, plates: list[PlateRead],
               frame: Image | None = None) -> list[Pass]:
        """Feed the plates read in the frame of stream time `t` (seconds); returns
        the passes that ended."""
        for plate in plates:
            track = self._match(plate)
            if track is None:
                track = _Track(plate.box, t, at, at)
                self._tracks.append(track)
            track.box, track.last_t, track.last_at = plate.box, t, at
            track.weights[plate.text] += plate.confidence
            track.counts[plate.text] += 1
            track.kinds[plate.text] = plate.kind
            if track.best is None or plate.confidence > track.best.confidence:
                track.best = plate
                if frame is not None:
                    track.crop = _jpeg(frame, plate.box)
        ended = [tr for tr in self._tracks if t - tr.last_t > self.linger]
        self._tracks = [tr for tr in self._tracks if tr not in ended]
        return [p for tr in ended if (p := self._close(tr)) is not None]

    def flush(self) -> list[Pass]:
        ended, self._tracks = self._tracks, []
        return [p for tr in ended if (p := self._close(tr)) is not None]

    def _match(self, plate: PlateRead) -> _Track | None:
        best: tuple[float, _Track] | None = None
        for tr in self._tracks:
            near = max(share_inside(plate.box, _grown(tr.box)),
                       share_inside(tr.box, _grown(plate.box)))
            if plate.text in tr.counts:
                near = max(near, 1.0)
            if near > 0.3 and (best is None or near > best[0]):
                best = (near, tr)
        return None if best is None else best[1]

    def _close(self, tr: _Track) -> Pass | None:
        votes = sum(tr.counts.values())
        if votes < self.min_votes or tr.best is None:
            return None
        text = max(tr.weights, key=lambda k: (tr.weights[k], tr.counts[k]))
        share = tr.weights[text] / sum(tr.weights.values())
        best_of_text = tr.best if tr.best.text == text else None
        top = best_of_text.confidence if best_of_text else tr.weights[text] / tr.counts[text]
        ref = best_of_text or tr.best
        if share * top < self.min_confidence or (
                tr.kinds[text] == "generic" and not self.accept_generic):
            return None
        return Pass(text, min(1.0, share * top), votes, tr.counts[text], tr.first_at,
                    tr.last_at, ref.country, ref.kind, tr.crop, ref.box)


def _grown(box: tuple[int, int, int, int], by: float = 0.75) -> tuple[int, int, int, int]:
    # A plate moves between sampled frames: look for it around where it was.
    x, y, w, h = box
    dx, dy = int(w * by), int(h * by * 2)
    return x - dx, y - dy, w + 2 * dx, h + 2 * dy


def _jpeg(frame: Image, box: tuple[int, int, int, int]) -> bytes:
    x, y, w, h = box
    pad_x, pad_y = w // 4, h // 2
    crop = frame[max(0, y - pad_y): y + h + pad_y, max(0, x - pad_x): x + w + pad_x]
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(data) if ok else b""


def probe_size(url: str, timeout: float = 15.0) -> tuple[int, int]:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise StreamError("ffprobe is not installed (Debian package ffmpeg)")
    args = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
            "stream=width,height", "-of", "json"]
    if url.startswith("rtsp://"):
        args += ["-rtsp_transport", "tcp"]
    try:
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=timeout,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise StreamError(f"{_safe(url)}: no answer within {timeout:.0f} s") from exc
    streams = json.loads(out.stdout or "{}").get("streams") or []
    if out.returncode != 0 or not streams:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no video stream"
        # ffprobe names the URL, credentials and all: say it once, without them.
        raise StreamError(f"{_safe(url)}: {why.replace(url + ': ', '').replace(url, _safe(url))}")
    return int(streams[0]["width"]), int(streams[0]["height"])


def _safe(url: str) -> str:
    """The URL without its credentials, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def frames(url: str, fps: float = 4.0, roi: Roi | None = None, width: int | None = None,
           stop: threading.Event | None = None) -> Iterator[tuple[float, Image]]:
    """(seconds of stream since the start, BGR frame) at `fps`, until the stream ends."""
    if not 0.2 <= fps <= 25:
        raise InvalidInput.on("fps", "between 0.2 and 25 frames per second")
    w, h = probe_size(url)
    if roi is not None:
        x, y, rw, rh = roi
        if x < 0 or y < 0 or rw < 32 or rh < 32 or x + rw > w or y + rh > h:
            raise InvalidInput.on("roi", f"x,y,w,h inside the {w}x{h} picture, 32 px or more")
        w, h = rw, rh
    filters = [f"fps={fps}"]
    if roi is not None:
        filters.append(f"crop={roi[2]}:{roi[3]}:{roi[0]}:{roi[1]}")
    if width is not None and width < w:
        h = max(2, round(h * width / w / 2) * 2)
        w = width
        filters.append(f"scale={w}:{h}")
    args = [shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error",
            "-nostdin"]
    if url.startswith("rtsp://"):
        args += ["-rtsp_transport", "tcp"]
    args += ["-i", url, "-an", "-sn", "-dn", "-vf", ",".join(filters), "-pix_fmt", "bgr24",
             "-f", "rawvideo", "pipe:1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    size = w * h * 3
    index = 0
    done = threading.Event()
    if stop is not None:
        # A stalled stream blocks the read below: `stop` must not wait for the next frame.
        def kill_on_stop() -> None:
            while not done.wait(0.25):
                if stop.is_set():
                    proc.kill()
                    return

        threading.Thread(target=kill_on_stop, daemon=True, name="frames-stop").start()
    try:
        assert proc.stdout is not None
        while stop is None or not stop.is_set():
            data = proc.stdout.read(size)
            if len(data) < size:
                return
            # Stream time, not wall time: a reader that falls behind on a busy server still
            # stamps each pass when it happened, and `duration` covers that much video.
            yield index / fps, np.frombuffer(data, np.uint8).reshape(h, w, 3)
            index += 1
    finally:
        done.set()
        proc.kill()
        proc.wait()


class HttpPoster(Protocol):
    def post(self, url: str, *, json: Any = ..., headers: Any = ...) -> Any: ...


# Answers worth sending the same read again for: the API is restarting or overloaded. The
# read's event id makes a second delivery of a stored read a duplicate, not a new transit.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class ReadPoster:
    """Posts each pass to `POST /api/reads` as the reader `device` (a reader's token).

    A read the API cannot take now (no connection, 5xx, 429) is kept and sent again
    before the next one, up to `backlog` reads, oldest dropped first (and logged): a
    short API outage costs no pass, a long one costs memory no more than that.
    """

    client: HttpPoster  # an httpx.Client with the API's base URL, or a test client
    token: str
    device: str
    relogin: Callable[[], str] | None = None  # a new token when the session has expired
    backlog: int = 1000
    # What became of the latest reads (bounded: a watcher runs for months).
    sent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=256))
    pending: deque[dict[str, Any]] = field(default_factory=deque)

    def __call__(self, plate: Pass) -> None:
        self.pending.append(self._body(plate))
        while self.pending:
            body = self.pending[0]
            try:
                r = self._post(body)
            except httpx.TransportError as exc:  # no connection, a timeout
                self._keep(str(exc))
                return
            if r.status_code in _RETRY_STATUS:
                self._keep(f"answer {r.status_code}")
                return
            self.pending.popleft()
            answer = r.json() if r.headers.get("content-type", "").startswith(
                "application/") else {}
            self.sent.append({"plate": body["plate"], "status": r.status_code,
                              "answer": answer})

    def _keep(self, why: str) -> None:
        while len(self.pending) > self.backlog:
            lost = self.pending.popleft()
            log.error("read %s of %s dropped: the backlog is full", lost["event_id"],
                      self.device)
        log.warning("API unavailable (%s): %d read(s) kept", why, len(self.pending))

    def _post(self, body: dict[str, Any]) -> Any:
        r = self.client.post("/api/reads", json=body,
                             headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code == 401 and self.relogin is not None:
            self.token = self.relogin()
            r = self.client.post("/api/reads", json=body,
                                 headers={"Authorization": f"Bearer {self.token}"})
        return r

    def _body(self, plate: Pass) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plate": plate.text, "device": self.device, "time": plate.last_seen.isoformat(),
            "confidence": round(plate.confidence, 4),
            "event_id": f"anpr-{plate.first_seen.strftime('%Y%m%dT%H%M%S.%f')}-{plate.text}",
        }
        if plate.country:
            body["country"] = plate.country
        if plate.crop_jpeg:
            body["images"] = [{"kind": "plate", "content_type": "image/jpeg",
                               "data": base64.b64encode(plate.crop_jpeg).decode()}]
        return body


def watch(engine: AnprEngine, url: str, sink: Callable[[Pass], None], *, fps: float = 4.0,
          roi: Roi | None = None, width: int | None = None, duration: float | None = None,
          linger: float = 1.5, min_votes: int = 2, min_confidence: float = MIN_PASS_CONFIDENCE,
          accept_generic: bool = False,
          stop: threading.Event | None = None) -> int:
    """Read plates in the stream until it ends, `duration` passes or `stop` is set;
    each finished pass goes to `sink`. Returns the number of passes.

    A camera sees the same shop signs in every frame: a pass whose text no plate format
    admits (kind generic) is left out unless `accept_generic`, else a sign would be a pass.
    A plate that drives across a sign's place may lose the vote to it: `roi` keeps the
    signs out of the picture."""
    tracker = PlateTracker(linger, min_votes, min_confidence, accept_generic)
    passes = 0
    t0 = datetime.now(UTC)
    for t, frame in frames(url, fps, roi, width, stop):
        at = t0 + timedelta(seconds=t)
        plates = engine.read(frame, second_look=False).plates
        for done in tracker.update(t, at, plates, frame):
            sink(done)
            passes += 1
        if duration is not None and t >= duration:
            break
    for done in tracker.flush():
        sink(done)
        passes += 1
    return passes


class StreamReader:
    """`watch` on one camera in a thread, for as long as the recorder runs it: a stream
    that fails or ends is opened again after a growing pause (1 s doubling to 30 s); the
    last error is logged and kept in `last_error`."""

    def __init__(self, engine: AnprEngine, camera: str, url: str,
                 sink: Callable[[Pass], None], *, fps: float = 4.0,
                 width: int | None = None) -> None:
        self.camera, self.url = camera, url
        self.passes = 0
        self.last_error: str | None = None
        self.sink = sink
        self._engine, self._fps, self._width = engine, fps, width
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"plates-{camera}")
        self._thread.start()

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                self.passes += watch(self._engine, self.url, self.sink, fps=self._fps,
                                     width=self._width, stop=self._stop)
                pause = 1.0
            except Exception as exc:  # a bad stream or sink must not end the thread
                self.last_error = exc.detail if isinstance(exc, VigilaError) else repr(exc)
                log.warning("plate reading on %s: %s", self.camera, self.last_error)
                pause = min(30.0, pause * 2)
            self._stop.wait(pause)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
