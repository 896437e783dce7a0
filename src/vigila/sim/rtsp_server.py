#!/usr/bin/python3
"""Simulated cameras: an RTSP server replaying a pre-encoded H.264 clip.

Run by Debian's system Python (``/usr/bin/python3``), which has PyGObject
(``gi``) and GStreamer's RTSP server; the project's venv has neither, so this
file imports nothing from vigila: stdlib and ``gi`` only.  The venv side
(``vigila.sim.cameras.CameraSimulator``) starts it and talks to it.

    /usr/bin/python3 rtsp_server.py --main clip.h264 [--sub small.h264]
        [--address 127.0.0.1] [--port 0] CAM-0001 CAM-0002 ...

Each camera is a mount ``/<camera-id>/main`` (and ``/<camera-id>/sub`` when a
sub clip is given).  Every clip has one pipeline, shared by the mounts of all
cameras and all their clients, that pushes the clip's access units into an
``appsrc`` again and again with fresh, continuous timestamps, then packetises
them (``rtph264pay``): nothing is decoded or encoded.  A pipeline of its own
for each camera cost 0.6-1.1 % of a core per stream on a 2-core EPYC, most of
it in the pipeline, not in the sending; one for all costs about 0.1 % a
client, so the simulator leaves the cores to what is under test.  A client
joins the replay where it is, as with a real camera that was already running,
and waits for the next key frame (one every 2 s in the default clip).

Control: one JSON object per line on stdin, one JSON line back on stdout.

    {"cmd": "list"}                       -> {"ok": true, "cameras": {"CAM-1": "up", ...}}
    {"cmd": "drop", "camera": "CAM-1"}    -> {"ok": true, "camera": "CAM-1", "state": "down"}
    {"cmd": "restore", "camera": "CAM-1"} -> {"ok": true, "camera": "CAM-1", "state": "up"}
    anything wrong                        -> {"ok": false, "error": "..."}

``drop`` unmounts the camera's streams (new clients get 404 Not Found) and
closes the connection of every client playing them; ``restore`` mounts them
again.  The other cameras go on unharmed: their clients keep the replay.
When serving, the first stdout line is
``{"ready": true, "address": ..., "port": ..., "cameras": [...], "paths": [...]}``.
SIGTERM, SIGINT or the end of stdin (the parent went away) stop the server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

try:
    # The venv, where mypy runs, has no gi: its types are Any there.
    import gi  # type: ignore[import-not-found, unused-ignore]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import (  # type: ignore[import-not-found, unused-ignore]
        GLib,
        Gst,
        GstRtspServer,
    )
except (ImportError, ValueError) as exc:  # ValueError: typelib missing
    sys.stderr.write(
        f"rtsp_server: GStreamer's RTSP server is not available to {sys.executable}: {exc}\n"
        "install the Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
        "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
        "(scripts/install-system.sh does it)\n"
    )
    sys.exit(3)

# vigila.registry.models.DeviceId, repeated: this script imports nothing from vigila.
CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def fail(message: str) -> None:
    sys.stderr.write(f"rtsp_server: {message}\n")
    sys.exit(2)


@dataclass
class Clip:
    """A clip split into access units, with the caps to replay them under."""

    path: str
    caps: Gst.Caps
    frames: list[Gst.Buffer]
    frame_ns: int

    @property
    def seconds(self) -> float:
        return float(len(self.frames) * self.frame_ns / Gst.SECOND)


def load_clip(path: str, default_fps: int) -> Clip:
    """Parse an Annex-B H.264 file into access units with GStreamer's h264parse."""
    if not os.path.isfile(path):
        fail(f"clip not found: {path}")
    pipeline = Gst.parse_launch(
        "filesrc name=src ! h264parse ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false max-buffers=0"
    )
    pipeline.get_by_name("src").set_property("location", path)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    frames: list[Gst.Buffer] = []
    caps: Gst.Caps | None = None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        caps = sample.get_caps()
        frames.append(sample.get_buffer())
    bus = pipeline.get_bus()
    error = bus.pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if error is not None:
        gerror, _debug = error.parse_error()
        fail(f"cannot read clip {path}: {gerror.message}")
    if not frames or caps is None:
        fail(f"clip {path} holds no H.264 frames")
    assert caps is not None
    if frames[0].has_flags(Gst.BufferFlags.DELTA_UNIT):
        # Looping must land on a picture a decoder can start from.
        fail(f"clip {path} does not start with a key frame")
    ok, num, den = caps.get_structure(0).get_fraction("framerate")
    if not ok or num <= 0 or den <= 0:
        # No timing in the stream: say it in the caps (by string, as PyGObject
        # cannot build a Gst.Fraction without gst-python's overrides).
        num, den = default_fps, 1
        structure = re.sub(r",\s*framerate=[^,;]*", "", caps.get_structure(0).to_string())
        caps = Gst.Caps.from_string(f"{structure.rstrip(';')}, framerate=(fraction){num}/{den}")
    return Clip(path, caps, frames, Gst.util_uint64_scale_int(Gst.SECOND, den, num))


class ClipReplay:
    """Feeds one media's appsrc: the clip over and over, timestamps running on.

    The source is live, so a late client joins the stream where it is (as with
    a real camera) and nothing ever seeks it.  Timestamps are running time:
    the first frame is stamped with the pipeline's running time when the
    source first asks for data, each next frame one frame later; the sinks'
    clock sync paces the pushes.
    """

    def __init__(self, clip: Clip, appsrc: Gst.Element) -> None:
        self.clip = clip
        self.appsrc = appsrc
        self.count = 0
        self.base: int | None = None
        appsrc.connect("need-data", self.on_need_data)

    def on_need_data(self, appsrc: Gst.Element, _length: int) -> None:
        if self.base is None:
            clock = appsrc.get_clock()
            self.base = clock.get_time() - appsrc.get_base_time() if clock is not None else 0
        frame = self.clip.frames[self.count % len(self.clip.frames)]
        # A new buffer sharing the frame's memory, with its own timestamps.
        # (Not Buffer.copy(): without gst-python's overrides it hands back
        # the same buffer.)
        buf = frame.copy_region(
            Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.MEMORY, 0, frame.get_size()
        )
        buf.pts = buf.dts = self.base + self.count * self.clip.frame_ns
        buf.duration = self.clip.frame_ns
        if self.count == 0:
            buf.set_flags(Gst.BufferFlags.DISCONT)
        self.count += 1
        appsrc.emit("push-buffer", buf)


class SharedFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc, unused-ignore]
    """A factory mounted at many paths that makes one media for all of them.

    The server keys its cache of shared medias by the factory's `gen_key`,
    which by default is the request's path: one key for every path means
    one pipeline for every camera serving this clip.
    """

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def do_gen_key(self, _url: Any) -> str:
        return self.key


def replay_factory(clip: Clip, medias: set[GstRtspServer.RTSPMedia]) -> SharedFactory:
    """The factory of every mount of `clip`; its media is kept in `medias` while prepared."""
    factory = SharedFactory(clip.path)
    factory.set_launch(
        "( appsrc name=src is-live=true format=time stream-type=stream max-buffers=2 "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 aggregate-mode=zero-latency )"
    )
    # One pipeline whatever the number of clients; it stops with its last client.
    factory.set_shared(True)

    def on_media_configure(
        _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", clip.caps)
        # The replay lives as long as the media holds the element's signal.
        ClipReplay(clip, appsrc)
        medias.add(media)
        media.connect("unprepared", medias.discard)

    factory.connect("media-configure", on_media_configure)
    return factory


@dataclass
class Camera:
    camera_id: str
    factories: dict[str, GstRtspServer.RTSPMediaFactory] = field(default_factory=dict)
    up: bool = True

    def paths(self) -> list[str]:
        return [f"/{self.camera_id}/{name}" for name in self.factories]


def audio_factory() -> GstRtspServer.RTSPMediaFactory:
    """/<camera>/audio: a stream with no video at all (G.711 silence), for fault tests.

    Nothing runs until a client plays it.
    """
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( audiotestsrc is-live=true wave=silence ! "
                       "audio/x-raw,rate=8000,channels=1 ! alawenc ! "
                       "rtppcmapay name=pay0 pt=8 )")
    factory.set_shared(True)
    return factory


class SimServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.main_clip = load_clip(args.main, args.fps)
        self.sub_clip = load_clip(args.sub, args.fps) if args.sub else None
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(args.address)
        self.server.set_service(str(args.port))
        self.mounts = self.server.get_mount_points()
        self.medias: set[GstRtspServer.RTSPMedia] = set()  # the prepared replays
        main = replay_factory(self.main_clip, self.medias)
        sub = replay_factory(self.sub_clip, self.medias) if self.sub_clip is not None else None
        self.cameras: dict[str, Camera] = {}
        for camera_id in args.cameras:
            camera = Camera(camera_id)
            camera.factories["main"] = main
            if sub is not None:
                camera.factories["sub"] = sub
            camera.factories["audio"] = audio_factory()
            self.cameras[camera_id] = camera
            self.mount(camera)
        self.loop = GLib.MainLoop()
        self.stdin_buffer = b""

    # --- mounts --------------------------------------------------------------

    def mount(self, camera: Camera) -> None:
        for name, factory in camera.factories.items():
            self.mounts.add_factory(f"/{camera.camera_id}/{name}", factory)
        camera.up = True

    def unmount(self, camera: Camera) -> None:
        for path in camera.paths():
            self.mounts.remove_factory(path)
        camera.up = False
        paths = camera.paths()

        def client_plays_camera(
            _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
        ) -> GstRtspServer.RTSPFilterResult:
            for session in client.session_filter(None):  # None: all, as a list
                for media in session.filter(None):
                    for path in paths:
                        # True when the media's path is a prefix of `path`.
                        matches, matched = media.matches(path)
                        if matches and matched == len(path):
                            # Closing the connection tears its sessions down;
                            # the replay, which other cameras share, stops
                            # only with its last client.
                            return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        self.server.client_filter(client_plays_camera)

    # --- control -------------------------------------------------------------

    def answer(self, reply: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    def handle(self, line: str) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"not JSON: {exc.msg}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "expected a JSON object"}
        cmd = request.get("cmd")
        if cmd == "list":
            return {
                "ok": True,
                "cameras": {c.camera_id: "up" if c.up else "down" for c in self.cameras.values()},
            }
        if cmd in ("drop", "restore"):
            camera = self.cameras.get(str(request.get("camera")))
            if camera is None:
                return {"ok": False, "error": f"unknown camera: {request.get('camera')!r}"}
            if cmd == "drop" and camera.up:
                self.unmount(camera)
            elif cmd == "restore" and not camera.up:
                self.mount(camera)
            return {"ok": True, "camera": camera.camera_id, "state": "up" if camera.up else "down"}
        return {"ok": False, "error": f"unknown command: {cmd!r} (list, drop, restore)"}

    def on_stdin(self, fd: int, _condition: GLib.IOCondition) -> bool:
        data = os.read(fd, 65536)
        if not data:
            self.stop("end of input")
            return False
        self.stdin_buffer += data
        while b"\n" in self.stdin_buffer:
            raw, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.answer(self.handle(line))
        return True

    # --- life ----------------------------------------------------------------

    def stop(self, why: str) -> bool:
        sys.stderr.write(f"rtsp_server: stopping ({why})\n")
        self.server.client_filter(lambda _s, _c: GstRtspServer.RTSPFilterResult.REMOVE)
        for media in list(self.medias):
            media.unprepare()
        self.loop.quit()
        return False

    def run(self) -> None:
        source_id = self.server.attach(None)
        if source_id == 0:
            fail(f"cannot listen on {self.server.get_address()}:{self.server.get_service()} "
                 "(port in use?)")
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self.stop, "SIGTERM")
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.stop, "SIGINT")
        GLib.io_add_watch(
            sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, self.on_stdin
        )
        self.answer(
            {
                "ready": True,
                "address": self.server.get_address(),
                "port": self.server.get_bound_port(),
                "cameras": list(self.cameras),
                "paths": [p for c in self.cameras.values() for p in c.paths()],
                "clip_seconds": round(self.main_clip.seconds, 3),
            }
        )
        self.loop.run()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--main", required=True, help="Annex-B H.264 clip for /<camera>/main")
    parser.add_argument("--sub", help="smaller Annex-B H.264 clip for /<camera>/sub")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8554, help="RTSP port; 0 picks a free one")
    parser.add_argument("--fps", type=int, default=25, help="frame rate if the clip has none")
    parser.add_argument("cameras", nargs="+", help="camera ids, one mount each")
    args = parser.parse_args(argv)
    for camera_id in args.cameras:
        if not CAMERA_ID.match(camera_id):
            parser.error(f"bad camera id {camera_id!r}: letters, digits, '.', '_', '-'")
    if len(set(args.cameras)) != len(args.cameras):
        parser.error("camera ids repeat")
    if not 0 <= args.port <= 65535:
        parser.error(f"bad port {args.port}")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    Gst.init(None)
    SimServer(args).run()


if __name__ == "__main__":
    main(sys.argv[1:])
