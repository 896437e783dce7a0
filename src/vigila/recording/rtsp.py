"""A minimal RTSP client for H.264 over TCP, in process: the recorder's native engine.

ffmpeg reads an RTSP stream interleaved on TCP with four system calls per RTP packet
(a poll and a read for the 4-byte frame header, again for the packet), some 1,400 a
second for a 4 Mbit/s camera. This client reads whatever the socket holds in one call
and splits the frames in Python, so a camera costs a few wake-ups per video frame.

Only what recording needs: DESCRIBE (Basic or Digest authentication), SETUP of the first
H.264 video track as ``RTP/AVP/TCP`` interleaved, PLAY, OPTIONS as a keep-alive, TEARDOWN;
RTP de-packetisation of single NAL units, STAP-A and FU-A (RFC 6184). A stream this client
does not take (another codec, TLS, a redirect, UDP only, B-frames) raises `Unsupported`, and
the recorder hands that camera to ffmpeg.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

USER_AGENT = "Vigila"
_RECV = 1 << 18  # bytes per read: a frame's burst of packets comes in one call
PACE_SECONDS = 0.1  # a read waits for about this much of the stream (SO_RCVLOWAT)


class RtspError(Exception):
    """The camera refused or broke the session; the message is for the control room."""


class Unsupported(RtspError):
    """A stream this client does not record; ffmpeg can."""


@dataclass
class AccessUnit:
    """One video frame: its NAL units (without start codes) and RTP time (90 kHz, unwrapped)."""

    time: int
    nals: list[bytes]
    key: bool


@dataclass
class _Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StreamInfo:
    """What DESCRIBE and SETUP told about the video track."""

    control: str
    payload_type: int
    clock_rate: int
    sps: bytes | None = None
    pps: bytes | None = None
    keepalive: float = 30.0


def _split_url(url: str) -> tuple[str, str, int, str | None, str | None, bool]:
    """(url without credentials, host, port, user, password, tls)."""
    parts = urlsplit(url)
    tls = parts.scheme.lower() == "rtsps"
    host = parts.hostname or ""
    port = parts.port or (322 if tls else 554)
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return bare, host, port, user, password, tls


class RtspSession:
    """One RTSP session: `open()` negotiates, `frames()` yields access units until the end."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url, self.host, self.port, self.user, self.password, tls = _split_url(url)
        if tls:
            raise Unsupported("RTSP over TLS (rtsps)")
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.info: StreamInfo | None = None
        self._cseq = 0
        self._auth: tuple[str, dict[str, str]] | None = None
        self._buf = bytearray()
        self._pos = 0
        self._session = ""
        self.bytes_in = 0
        self._lowat = 1  # SO_RCVLOWAT: set by _pace once frames flow
        self._pace_at = 1 << 62  # bytes_in at which to pace next
        self._pace_since: float | None = None
        self._pace_bytes = 0

    # --- the RTSP exchange -------------------------------------------------------

    def open(self) -> StreamInfo:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError as exc:
            raise RtspError("timed out") from exc
        except ConnectionRefusedError as exc:
            raise RtspError("connection refused") from exc
        except socket.gaierror as exc:
            raise RtspError("unknown host") from exc
        except OSError as exc:
            raise RtspError(f"host unreachable ({exc.strerror or exc})") from exc
        self.sock = raw  # close() closes it, whatever happens below
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        described = self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = (described.headers.get("content-base")
                or described.headers.get("content-location") or self.url)
        info = parse_sdp(described.body.decode("utf-8", "replace"), base)
        setup = self._request("SETUP", info.control,
                              {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        transport = setup.headers.get("transport", "")
        channel = re.search(r"interleaved=(\d+)", transport)
        if channel is None or channel.group(1) != "0":
            raise Unsupported(f"the camera did not accept RTP over TCP ({transport[:80]})")
        session, _, params = setup.headers.get("session", "").partition(";")
        self._session = session.strip()
        timeout = re.search(r"timeout=(\d+)", params)
        info.keepalive = max(5.0, int(timeout.group(1)) / 2) if timeout else 30.0
        self._request("PLAY", self.url if info.control == self.url else base,
                      {"Range": "npt=0.000-"})
        self.info = info
        return info

    def interrupt(self) -> None:
        """From another thread: end a read that waits for the camera (frames() then ends)."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            if self._session:
                self.sock.settimeout(0.5)
                self._send("TEARDOWN", self.url, {})
        except OSError:
            pass
        finally:
            self.sock.close()
            self.sock = None

    def _send(self, method: str, url: str, headers: dict[str, str]) -> None:
        assert self.sock is not None
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self._session:
            lines.append(f"Session: {self._session}")
        if self._auth is not None:
            lines.append(f"Authorization: {self._authorization(method, url)}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _request(self, method: str, url: str, headers: dict[str, str]) -> _Response:
        for attempt in (1, 2):
            self._send(method, url, headers)
            response = self._read_response()
            if response.status == 401 and attempt == 1 and self.user is not None:
                self._auth = _challenge(response.headers.get("www-authenticate", ""))
                continue
            break
        if response.status == 401:
            raise RtspError("authentication refused (401)")
        if response.status == 404:
            raise RtspError("stream not found (404)")
        if response.status == 461:
            raise Unsupported("the camera did not accept RTP over TCP (461)")
        if 300 <= response.status < 400:
            raise Unsupported(f"a redirect ({response.status})")
        if response.status >= 300:
            raise RtspError(f"{method} refused: {response.status} {response.reason}"[:200])
        return response

    def _authorization(self, method: str, url: str) -> str:
        assert self._auth is not None
        scheme, params = self._auth
        user, password = self.user or "", self.password or ""
        if scheme == "basic":
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        ha1 = _md5(f"{user}:{realm}:{password}")
        ha2 = _md5(f"{method}:{url}")
        fields = {"username": user, "realm": realm, "nonce": nonce, "uri": url}
        if "auth" in params.get("qop", "").split(","):
            cnonce = os.urandom(8).hex()
            fields.update(qop="auth", nc="00000001", cnonce=cnonce)
            fields["response"] = _md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        else:
            fields["response"] = _md5(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in params:
            fields["opaque"] = params["opaque"]
        quoted = ", ".join(f'{k}="{v}"' if k not in ("qop", "nc") else f"{k}={v}"
                           for k, v in fields.items())
        return f"Digest {quoted}"

    def _read_response(self) -> _Response:
        """The next RTSP response, skipping interleaved data that comes before it."""
        while True:
            item = self._next_item()
            if isinstance(item, _Response):
                return item

    # --- reading the socket ------------------------------------------------------

    def _pace(self) -> None:
        """Wake for about a tenth of a second of stream, not for every burst.

        A camera sends each frame as a burst of packets, and a read right after a wake-up
        finds a part of it: some 50 reads a second for a 4 Mbit/s stream, each a thread
        switch under the GIL. SO_RCVLOWAT makes the kernel wait for a given number of
        bytes: a tenth of a second's worth, as measured, up to 64 KiB.
        """
        assert self.sock is not None
        now = time.monotonic()
        if self._pace_since is not None and now > self._pace_since:
            rate = (self.bytes_in - self._pace_bytes) / (now - self._pace_since)
            lowat = max(1, min(1 << 16, int(rate * PACE_SECONDS)))
            if abs(lowat - self._lowat) > self._lowat // 4:
                with contextlib.suppress(OSError):
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
                    self._lowat = lowat
        self._pace_since, self._pace_bytes = now, self.bytes_in
        self._pace_at = self.bytes_in + max(1 << 18, 20 * self._lowat)  # every second or two

    def _whatever_came(self) -> bytes:
        assert self.sock is not None
        self.sock.settimeout(0)  # read what is there, without waiting for the low-water mark
        try:
            chunk = self.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            raise RtspError(f"connection lost ({exc.strerror or exc})") from exc
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:  # the stream slowed down: wait for less from now on
            self._lowat = 1
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            self._pace_since, self._pace_at = None, self.bytes_in + len(chunk) + (1 << 16)
            return chunk
        raise RtspError("stream ended")

    def _fill(self) -> None:
        assert self.sock is not None
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        try:
            chunk = self.sock.recv(_RECV)
        except TimeoutError as exc:
            # Less than the low-water mark came in a whole timeout: a slowed stream.
            chunk = self._whatever_came()
            if not chunk:
                raise RtspError("timed out") from exc
        except OSError as exc:
            raise RtspError(f"connection lost ({exc.strerror or exc})") from exc
        if not chunk:
            raise RtspError("stream ended")
        self.bytes_in += len(chunk)
        if self.bytes_in >= self._pace_at:
            self._pace()
        self._buf += chunk

    def _next_item(self) -> _Response | tuple[int, bytearray]:
        """An RTSP response or an interleaved frame (channel, payload), reading as needed."""
        while True:
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if avail >= 4 and buf[pos] == 0x24:  # '$': an interleaved frame
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if avail >= 4 + length:
                    self._pos = pos + 4 + length
                    return buf[pos + 1], buf[pos + 4:pos + 4 + length]
            elif avail >= 5 and buf[pos] != 0x24:
                if not 0x41 <= buf[pos] <= 0x5A:  # "RTSP/1.0 ..." or a request ("ANNOUNCE ...")
                    raise RtspError("the camera sent data that is neither RTSP nor RTP")
                end = buf.find(b"\r\n\r\n", pos)
                if end >= 0:
                    head = bytes(buf[pos:end]).decode("latin-1").split("\r\n")
                    headers = {}
                    for line in head[1:]:
                        key, _, value = line.partition(":")
                        headers[key.strip().lower()] = value.strip()
                    length = int(headers.get("content-length", "0") or 0)
                    if len(buf) >= end + 4 + length:
                        self._pos = end + 4 + length
                        if not head[0].startswith("RTSP/"):
                            continue  # a request from the camera: nothing here needs one
                        match = re.match(r"RTSP/\d\.\d (\d{3}) ?(.*)", head[0])
                        if match is None:
                            raise RtspError(f"bad RTSP status line {head[0][:80]!r}")
                        return _Response(int(match.group(1)), match.group(2), headers,
                                         bytes(buf[end + 4:end + 4 + length]))
                elif avail > 65536:
                    raise RtspError("an RTSP response header over 64 KiB")
            self._fill()

    def frames(self, stall: float | None = None) -> Iterator[AccessUnit]:
        """Access units in arrival order until the stream ends (then RtspError); also
        when no frame came for `stall` seconds while other data did."""
        assert self.info is not None and self.sock is not None
        info = self.info
        depacketiser = Depacketiser(info.payload_type)
        self._pace_at = self.bytes_in + (1 << 16)  # first measure over the first 64 KiB
        last_frame = time.monotonic()
        next_keepalive = last_frame + info.keepalive
        while True:
            item = self._next_item()
            if isinstance(item, _Response):
                # The answer to a keep-alive. A camera that does not implement the method
                # says so and goes on streaming; only a lost session ends the stream.
                if item.status == 454:
                    raise RtspError("the camera ended the session (454)")
                continue
            if item[0] == 0:
                depacketiser.push(item[1])
                if depacketiser.ready:
                    yield from depacketiser.ready
                    depacketiser.ready.clear()
                    last_frame = time.monotonic()
                    continue
            now = time.monotonic()
            if stall is not None and now - last_frame > stall:
                raise RtspError(f"stalled: no video for {stall:g} s")
            if now >= next_keepalive:
                self._send("OPTIONS", self.url, {})  # every server has it; refreshes the session
                next_keepalive = time.monotonic() + info.keepalive


# --- SDP -------------------------------------------------------------------------


def parse_sdp(sdp: str, base: str) -> StreamInfo:
    """The first H.264 video track of a session description (Unsupported if none)."""
    media: list[list[str]] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
    videos = [m for m in media if m[0].startswith("m=video")]
    if not videos:
        raise RtspError("no video stream")  # for ffmpeg too: no fallback
    lines = videos[0]
    fields = lines[0].split()
    if len(fields) < 4 or not fields[3].isdigit():
        raise Unsupported(f"unexpected media line {lines[0][:80]!r}")
    payload = int(fields[3])
    codec, rate = "", 90000
    control = base
    fmtp = ""
    for line in lines[1:]:
        if line.startswith(f"a=rtpmap:{payload} "):
            name, _, clock = line.split(" ", 1)[1].partition("/")
            codec, rate = name.upper(), int(clock.split("/")[0] or 90000)
        elif line.startswith("a=control:"):
            target = line[len("a=control:"):]
            control = target if "://" in target or target == "*" else urljoin(
                base if base.endswith("/") else base + "/", target)
            if target == "*":
                control = base
        elif line.startswith(f"a=fmtp:{payload} "):
            fmtp = line.split(" ", 1)[1]
    if codec != "H264":
        raise Unsupported(f"video codec {codec or 'unknown'}")
    params = {k.strip().lower(): v.strip() for k, _, v in
              (p.partition("=") for p in fmtp.split(";")) if k.strip()}
    if params.get("packetization-mode", "0") not in ("0", "1"):
        raise Unsupported("interleaved H.264 packetisation (mode 2)")
    info = StreamInfo(control=control, payload_type=payload, clock_rate=rate)
    for item in params.get("sprop-parameter-sets", "").split(","):
        try:
            nal = base64.b64decode(item + "=" * (-len(item) % 4))
        except ValueError:
            continue
        if nal and nal[0] & 0x1F == 7:
            info.sps = nal
        elif nal and nal[0] & 0x1F == 8:
            info.pps = nal
    return info


# --- RTP -------------------------------------------------------------------------


class Depacketiser:
    """RTP packets of one H.264 stream in, whole access units out (RFC 6184).

    `push` a packet, then take the frames it completed from `ready`.
    """

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.ready: list[AccessUnit] = []
        self._nals: list[bytes] = []
        self._fu: list[bytes | bytearray] | None = None
        self._time: int | None = None  # RTP time of the unit being gathered
        self._key = False
        self._wraps = 0
        self._last_raw: int | None = None
        self._seq: int | None = None
        self.lost = 0  # packets missing by sequence number

    def push(self, packet: bytes | bytearray) -> None:
        if len(packet) < 12 or packet[0] >> 6 != 2:
            return
        first, second = packet[0], packet[1]
        if second & 0x7F != self.payload_type:
            return
        seq, raw_time = struct.unpack_from("!HI", packet, 2)
        if self._seq is not None and seq != (self._seq + 1) & 0xFFFF:
            self.lost += (seq - self._seq - 1) & 0xFFFF
            self._fu = None  # a fragmented NAL with a hole in it is dropped
        self._seq = seq
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            if len(packet) < start + 4:
                return
            start += 4 + 4 * struct.unpack_from("!H", packet, start + 2)[0]
        end = len(packet) - (packet[-1] if first & 0x20 else 0)
        if end <= start:
            return
        # Unwrap the 32-bit RTP time (it wraps every 13 hours at 90 kHz).
        last = self._last_raw
        if last is not None:
            if raw_time < last - 0x80000000:
                self._wraps += 1
            elif raw_time > last + 0x80000000:
                self._wraps -= 1  # a late packet from before the wrap
        self._last_raw = raw_time
        rtp_time = raw_time + (self._wraps << 32)
        if rtp_time != self._time:
            if self._nals:  # the previous frame lost its marker packet
                self._finish()
            self._time = rtp_time
        kind = packet[start] & 0x1F
        if kind == 28:  # FU-A
            if end - start < 2:
                return
            indicator, header = packet[start], packet[start + 1]
            if header & 0x80:
                self._fu = [bytes(((indicator & 0xE0) | (header & 0x1F),))]
            if self._fu is not None:
                self._fu.append(packet[start + 2:end])
                if header & 0x40:
                    self._add(b"".join(self._fu))
                    self._fu = None
        elif kind == 24:  # STAP-A
            pos = start + 1
            while pos + 2 <= end:
                size = (packet[pos] << 8) | packet[pos + 1]
                if size == 0 or pos + 2 + size > end:
                    break
                self._add(bytes(packet[pos + 2:pos + 2 + size]))
                pos += 2 + size
        elif 1 <= kind <= 23:
            self._add(bytes(packet[start:end]))
        else:
            raise Unsupported(f"H.264 packet type {kind} (only single, STAP-A and FU-A)")
        if second & 0x80 and self._nals:  # marker: the frame's last packet
            self._finish()

    def _add(self, nal: bytes) -> None:
        self._nals.append(nal)
        if nal[0] & 0x1F == 5:
            self._key = True

    def _finish(self) -> None:
        assert self._time is not None
        self.ready.append(AccessUnit(self._time, self._nals, self._key))
        self._nals, self._key = [], False


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="?([^",]*)"?', rest)}
    return scheme.lower(), params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
