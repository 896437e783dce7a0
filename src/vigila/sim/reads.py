"""Simulated plate readers: realistic reads posted to a running Vigila over HTTP.

`ReadSimulator` is a thread that posts to `POST /api/reads` at a steady rate, as a site's
readers (or their gateway) would: mostly Italian cars, some motorcycles, a few French,
German and Swiss plates; every `hit_every`-th read a plate of the hotlist exactly, now and
then an OCR look-alike of one (a single 0/O, 8/B or 5/S swap), so that a demo raises
alarms of both kinds. Some reads carry a small plate crop (a JPEG drawn here, once per
plate). Direction and lane come from the reader's registry fields where they are known.

It behaves like a reader's buffer: reads that could not be delivered (the API down or
restarting, a 5xx) stay queued and are posted again with the same event ids, so a retry
of a read that did arrive is answered as a duplicate, never stored twice.

    with ReadSimulator("http://127.0.0.1:8000", token, ["LPR-01"], 2.0,
                       ["GA123BC"], hit_every=30, seed=1) as sim:
        time.sleep(60)
    print(sim.counters())

Dati illustrativi: targhe generate a caso, nessuna corrisponde a veicoli reali.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from vigila.plates.formats import CH_CANTONS, FR_LETTERS, IT_CAR_FIRST, IT_LETTERS

log = logging.getLogger(__name__)

__all__ = [
    "PlateFactory",
    "ReadCounters",
    "ReadSimulator",
    "ReaderInfo",
    "SimulatorStopped",
    "login",
    "lookalike",
    "plate_image",
    "wait_for_api",
]

_IT_LETTERS = "".join(sorted(IT_LETTERS))
# Recent series are on the road far more than the old ones (2026: the G series is issued).
_IT_FIRST = "".join(sorted(IT_CAR_FIRST))
_IT_FIRST_WEIGHTS = [{"G": 30, "F": 25, "E": 18, "D": 10, "C": 6, "B": 3}.get(c, 0.3)
                     for c in _IT_FIRST]
_FR_LETTERS = "".join(sorted(FR_LETTERS))
_DE_DISTRICTS = ("M", "B", "HH", "S", "K", "F", "N", "RO", "GAP", "TS", "FFB")
_CH_NEAR_ITALY = tuple(c for c in ("TI", "GR", "VS", "ZH", "GE", "BE", "LU") if c in CH_CANTONS)
_SWAPS = {"0": "O", "O": "0", "8": "B", "B": "8", "5": "S", "S": "5"}
_EU_BLUE = (0, 51, 153)
_IMAGE_CACHE = 256  # plate crops kept; a hotlist plate comes back often, a random one never


class SimulatorStopped(Exception):
    """Raised inside the simulator's thread when it is asked to stop while waiting."""


@dataclass(frozen=True)
class ReaderInfo:
    """A reader as the registry knows it: its direction and lane, when it names them."""

    id: str
    direction: str | None = None  # inbound | outbound
    lane: int | None = None


@dataclass(frozen=True)
class ReadCounters:
    """What became of the simulator's reads so far."""

    generated: int = 0
    sent: int = 0  # reads the API answered for (stored, duplicate or rejected)
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    alarms: int = 0  # alarms the stored reads raised
    hits_sent: int = 0  # reads of a hotlist plate exactly, generated
    lookalikes_sent: int = 0  # OCR look-alikes of a hotlist plate, generated
    errors: int = 0  # failed attempts: connection refused, timeouts, 5xx, refused logins
    dropped: int = 0  # reads given up (the queue overflowed, or the API refuses us)
    pending: int = 0  # reads waiting for the API

    def summary(self) -> str:
        return (f"inviate/sent {self.sent}, memorizzate/stored {self.stored}, "
                f"duplicate {self.duplicates}, rifiutate/rejected {self.rejected}, "
                f"allarmi/alarms {self.alarms}, errori/errors {self.errors}, "
                f"in coda/pending {self.pending}")


# --- plates ---------------------------------------------------------------------------

class PlateFactory:
    """Plates of realistic shape; every choice goes through the given `random.Random`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _letters(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def italian_car(self) -> str:
        """AB123CD: since 1994, no I, O, Q, U; X and Y do not lead (trailers, police)."""
        first = self.rng.choices(_IT_FIRST, _IT_FIRST_WEIGHTS)[0]
        return first + self._letters(_IT_LETTERS, 1) + self._digits(3) + \
            self._letters(_IT_LETTERS, 2)

    def italian_motorcycle(self) -> str:
        """AB12345."""
        return self._letters(_IT_LETTERS, 2) + self._digits(5)

    def french(self) -> str:
        """AB-123-CD, as the SIV writes it (readers often keep the dashes)."""
        return (f"{self._letters(_FR_LETTERS, 2)}-{self.rng.randint(1, 999):03d}-"
                f"{self._letters(_FR_LETTERS, 2)}")

    def german(self) -> str:
        """M AB 1234: district, one or two letters, one to four digits (no leading 0)."""
        district = self.rng.choice(_DE_DISTRICTS)
        letters = self._letters("ABCDEFGHJKLMNPRSTUVWXYZ", self.rng.choice((1, 2)))
        longest = min(4, 8 - len(district) - len(letters))  # eight characters at most
        return f"{district} {letters} {self.rng.randint(1, 10 ** longest - 1)}"

    def swiss(self) -> str:
        """TI 123456: canton and up to six digits."""
        return f"{self.rng.choice(_CH_NEAR_ITALY)} {self.rng.randint(1, 999_999)}"

    def any(self) -> tuple[str, str]:
        """(plate, country) with the traffic's mix: cars, motorcycles, some foreigners."""
        roll = self.rng.random()
        if roll < 0.85:
            return self.italian_car(), "IT"
        if roll < 0.94:
            return self.italian_motorcycle(), "IT"
        if roll < 0.97:
            return self.french(), "FR"
        if roll < 0.99:
            return self.german(), "DE"
        return self.swiss(), "CH"


def lookalike(plate: str, rng: random.Random) -> str | None:
    """`plate` with one character swapped for its OCR look-alike (0/O, 8/B, 5/S); None
    when the plate has none of them."""
    places = [i for i, ch in enumerate(plate) if ch in _SWAPS]
    if not places:
        return None
    i = rng.choice(places)
    return plate[:i] + _SWAPS[plate[i]] + plate[i + 1:]


def _shown(plate: str, country: str) -> str:
    """The plate as printed on it: AB 123CD for Italy, the separators of the others."""
    if country == "IT" and plate.isalnum():
        return f"{plate[:2]} {plate[2:]}"
    return plate.replace("-", " ")


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # an old Pillow, or one without FreeType: the bitmap font
        return ImageFont.load_default()


def plate_image(plate: str, country: str = "I") -> bytes:
    """A small plate crop (JPEG, about 2 KB): the text on white, the blue EU band left."""
    from PIL import Image, ImageDraw

    width, height, band = 156, 36, 16
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, band, height - 1), fill=_EU_BLUE)
    draw.rectangle((0, 0, width - 1, height - 1), outline="black")
    draw.text((band // 2, height - 8), country[:2], fill="white", font=_font(10), anchor="mm")
    draw.text(((width + band) // 2, height // 2), plate, fill="black", font=_font(22),
              anchor="mm")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=70)
    return out.getvalue()


# --- HTTP helpers ---------------------------------------------------------------------

def wait_for_api(base_url: str, timeout: float | None = 60.0,
                 stop: threading.Event | None = None, *, interval: float = 0.25) -> bool:
    """Poll `GET /api/health` until it answers 200; False on timeout or when `stop` is set."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if stop is None:
                time.sleep(interval)
            elif stop.wait(interval):
                return False


def login(base_url: str, username: str, password: str, *, timeout: float = 10.0) -> str:
    """A bearer token from `POST /api/auth/login`; httpx.HTTPStatusError when refused."""
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        r = client.post("/api/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        token: str = r.json()["token"]
        return token


class _Retry(Exception):
    """The API could not take the reads now: keep them, back off, try again."""


# --- the simulator --------------------------------------------------------------------

class ReadSimulator:
    """A thread posting simulated plate reads to `base_url` (see the module docstring).

    `token` is a bearer token of an account with the reader role; with `token` None the
    thread first waits for `GET /api/health` and logs in with `credentials`, which are also
    used to log in again when a token expires. `readers` are registry ids, or `ReaderInfo`
    with the reader's direction and lane. `rate_per_s` reads per second in all.
    """

    def __init__(self, base_url: str, token: str | None, readers: Sequence[str | ReaderInfo],
                 rate_per_s: float, hotlist_plates: Sequence[str] = (), hit_every: int = 0,
                 seed: int | None = None, *,
                 credentials: tuple[str, str] | None = None,
                 image_share: float = 0.3, lookalike_share: float = 0.02,
                 batch_share: float = 0.5, max_batch: int = 100,
                 max_pending: int = 10_000, report_every: float = 60.0,
                 timeout: float = 5.0) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if not readers:
            raise ValueError("no plate reader to simulate")
        if token is None and credentials is None:
            raise ValueError("give a token or the credentials to log in with")
        self.base_url = base_url.rstrip("/")
        self.readers = [r if isinstance(r, ReaderInfo) else ReaderInfo(r) for r in readers]
        self.rate = rate_per_s
        self.hotlist_plates = [p for p in hotlist_plates if p]
        self.hit_every = hit_every if self.hotlist_plates else 0
        self.credentials = credentials
        self.image_share = image_share
        self.lookalike_share = lookalike_share if self.hotlist_plates else 0.0
        self.batch_share = batch_share
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.report_every = report_every
        self.timeout = timeout
        self._token = token
        self._rng = random.Random(seed)
        self._plates = PlateFactory(self._rng)
        # Not from the seeded generator: two runs with one seed must not share event ids.
        self._run_id = uuid.uuid4().hex[:10]
        self._seq = 0
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._pending: deque[dict[str, Any]] = deque()
        self._counters = ReadCounters()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drain = False
        self._stopped_at = math.inf
        self._credit = 0.0  # reads due but not yet queued (fractions carry over)
        self._last = 0.0  # when the credit was last counted
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self._backoff = 0.0
        self._retry_at = 0.0

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> ReadSimulator:
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        self._thread = threading.Thread(target=self._run, name="vigila-read-simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0, *, drain: bool = False) -> None:
        """Stop posting and wait for the thread. Reads still queued are left unsent, unless
        `drain`: then the thread tries once more to post them before it ends."""
        self._drain = drain
        self._stopped_at = time.monotonic()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ready(self) -> bool:
        """True once logged in and posting."""
        return self._ready.is_set()

    def __enter__(self) -> ReadSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def counters(self) -> ReadCounters:
        with self._lock:
            return replace(self._counters, pending=len(self._pending))

    def _count(self, **more: int) -> None:
        with self._lock:
            values = {k: getattr(self._counters, k) + v for k, v in more.items()}
            self._counters = replace(self._counters, **values)

    # -- reads --------------------------------------------------------------------------

    def _image(self, plate: str, country: str) -> bytes:
        key = f"{country}|{plate}"
        found = self._images.get(key)
        if found is not None:
            self._images.move_to_end(key)
            return found
        data = plate_image(plate, "I" if country == "IT" else country)
        self._images[key] = data
        if len(self._images) > _IMAGE_CACHE:
            self._images.popitem(last=False)
        return data

    def make_read(self) -> dict[str, Any]:
        """The next read, as the API takes it (JSON)."""
        self._seq += 1
        rng = self._rng
        reader = rng.choice(self.readers)
        confidence = rng.uniform(0.82, 0.99)
        kind = "random"
        if self.hit_every and self._seq % self.hit_every == 0:
            plate, country, kind = rng.choice(self.hotlist_plates), "IT", "hit"
        elif self.lookalike_share and rng.random() < self.lookalike_share:
            listed = rng.choice(self.hotlist_plates)
            misread = lookalike(listed, rng)
            if misread is None:
                plate, country = self._plates.any()
            else:
                plate, country, kind = misread, "IT", "lookalike"
                confidence = rng.uniform(0.55, 0.8)
        else:
            plate, country = self._plates.any()
        read: dict[str, Any] = {
            "plate": plate,
            "device": reader.id,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event_id": f"sim-{self._run_id}-{self._seq:08d}",
            "confidence": round(confidence, 3),
            "direction": reader.direction or rng.choice(("inbound", "outbound")),
            "lane": reader.lane or rng.choice((1, 2)),
        }
        # Readers name the country of foreign plates; Italian ones not always.
        if country != "IT" or rng.random() < 0.7:
            read["country"] = country
        if rng.random() < self.image_share:
            data = self._image(_shown(plate, country), country)
            read["images"] = [{"kind": "plate", "data": base64.b64encode(data).decode(),
                               "content_type": "image/jpeg"}]
        self._count(generated=1, hits_sent=kind == "hit", lookalikes_sent=kind == "lookalike")
        return read

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url,
                              timeout=httpx.Timeout(self.timeout, connect=2.0)) as client:
                self._connect(client)
                self._ready.set()
                log.info("simulatore letture avviato / read simulator started: %.1f letture/s "
                         "su %d lettori -> %s", self.rate, len(self.readers), self.base_url)
                self._loop(client)
                if self._drain and self._pending:
                    self._flush(client, final=True)
        except SimulatorStopped:
            pass
        except Exception:  # a bug here must say so, not vanish with the daemon thread
            log.exception("simulatore letture fermato da un errore / read simulator crashed")
        finally:
            log.info("simulatore letture fermo / read simulator stopped: %s",
                     self.counters().summary())

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise SimulatorStopped

    def _connect(self, client: httpx.Client) -> None:
        """With no token: wait for the API to answer, then log in (both retried)."""
        if self._token is not None:
            return
        delay = 0.25
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    self._login(client)
                    return
            except httpx.TransportError:
                pass
            except _Retry:
                self._count(errors=1)
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    def _login(self, client: httpx.Client) -> None:
        assert self.credentials is not None
        username, password = self.credentials
        try:
            r = client.post("/api/auth/login",
                            json={"username": username, "password": password})
        except httpx.TransportError as exc:
            raise _Retry(f"login: {exc!r}") from exc
        if r.status_code != 200:
            log.error("accesso rifiutato / login refused for %s: HTTP %s %s", username,
                      r.status_code, r.text[:200])
            raise _Retry(f"login refused: HTTP {r.status_code}")
        self._token = r.json()["token"]

    def _loop(self, client: httpx.Client) -> None:
        tick = min(0.2, max(0.02, 1.0 / self.rate))
        self._credit = 0.0
        self._last = time.monotonic()
        reported = self._last
        while not self._stop.is_set():
            now = time.monotonic()
            self._generate(now)
            if self._pending and now >= self._retry_at:
                self._flush(client)
            if self.report_every and now - reported >= self.report_every:
                reported = now
                log.info("letture / reads: %s", self.counters().summary())
            self._stop.wait(tick)
        # The reads due until the stop was asked for: a slow answer must not leave a run
        # of `duration` seconds short of its reads.
        self._generate(min(time.monotonic(), self._stopped_at))

    def _generate(self, now: float) -> None:
        """Queue the reads due by `now` at `rate`; past `max_pending`, drop the oldest."""
        self._credit += max(0.0, now - self._last) * self.rate
        self._last = max(self._last, now)
        due = int(self._credit)
        self._credit -= due
        for _ in range(due):
            self._pending.append(self.make_read())
        overflow = len(self._pending) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            self._count(dropped=overflow)

    def _flush(self, client: httpx.Client, *, final: bool = False) -> None:
        """Post what is queued, in one batch or one read at a time (as readers differ)."""
        try:
            while self._pending and (final or not self._stop.is_set()):
                if len(self._pending) > 1 and self._rng.random() < self.batch_share:
                    batch = [self._pending[i]
                             for i in range(min(self.max_batch, len(self._pending)))]
                    self._post(client, {"reads": batch}, len(batch))
                    for _ in batch:
                        self._pending.popleft()
                else:
                    self._post(client, self._pending[0], 1)
                    self._pending.popleft()
        except _Retry as exc:
            self._count(errors=1)
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
                log.warning("API non raggiungibile, ritento / API unavailable, retrying: %s",
                            exc)
            self._backoff = min(max(self._backoff * 2, 0.5), 5.0)
            self._retry_at = now + self._backoff
            return
        if self._failing_since is not None:
            log.info("API di nuovo raggiungibile dopo %.1f s / API reachable again",
                     time.monotonic() - self._failing_since)
        self._failing_since = None
        self._backoff = 0.0

    def _post(self, client: httpx.Client, body: Mapping[str, Any], n: int) -> None:
        """Post one read or one batch and count the answer; `_Retry` to keep them queued."""
        for attempt in (1, 2):
            try:
                r = client.post("/api/reads", json=body,
                                headers={"Authorization": f"Bearer {self._token}"})
            except httpx.TransportError as exc:
                raise _Retry(repr(exc)) from exc
            if r.status_code == 401 and attempt == 1 and self.credentials is not None:
                self._login(client)  # the session expired: a new token, the same reads
                continue
            break
        status = r.status_code
        if status in (200, 201):
            self._answered(r.json(), n)
            return
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}")
        if status == 422:  # the reads themselves are at fault: retrying will not help
            self._count(sent=n, rejected=n)
            log.warning("letture rifiutate / reads rejected: %s", r.text[:500])
            return
        # 401 without credentials, 403, 413...: a configuration fault; give these up.
        self._count(errors=1, dropped=n)
        log.error("l'API rifiuta le letture / the API refuses the reads: HTTP %s %s",
                  status, r.text[:300])

    def _answered(self, body: Mapping[str, Any], n: int) -> None:
        if "results" in body:  # a batch
            self._count(sent=n, stored=int(body["stored"]), duplicates=int(body["duplicates"]),
                        rejected=int(body["rejected"]), alarms=int(body["alarms"]))
            if body["rejected"]:
                bad = [r for r in body["results"] if r["status"] == "rejected"]
                log.warning("letture rifiutate / reads rejected: %s", bad[:3])
            return
        status = body.get("status")
        self._count(sent=1, stored=status == "stored", duplicates=status == "duplicate",
                    alarms=len(body.get("alarms") or ()))
