"""Synthetic Italian plates (vigila.sim.plate_images): texts, images, a labelled set, and
the traffic clip served by the simulated cameras (a real RTSP server read by ffprobe).

The clip tests need ffmpeg and, for the RTSP one, Debian's GStreamer RTSP server
(scripts/install-system.sh installs both).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cameras import ffprobe_json, probe_stream
from typer.testing import CliRunner

from vigila.plates import classify
from vigila.sim.cameras import CameraSimulator, SimulatorError
from vigila.sim.cli import sim_app
from vigila.sim.plate_images import (
    is_motorcycle,
    random_italian_plate,
    render_plate,
    street_scene,
    traffic_clip,
    traffic_schedule,
    write_set,
)

SET_SIZE = 12
CLIP_PLATES = ("AB123CD", "EF45678")
CLIP_SIZE = (640, 360)  # small for speed; the camera simulator serves 1280x720 alike


def test_texts_are_italian_car_and_motorcycle_plates() -> None:
    rng = np.random.default_rng(0)
    texts = [random_italian_plate(rng) for _ in range(2000)]
    for text in set(texts):
        best = classify(text)[0]
        assert best.country == "IT", (text, best)
        assert best.format_id == ("it_motorcycle" if is_motorcycle(text) else "it_car"), text
    assert 0.07 < sum(map(is_motorcycle, texts)) / len(texts) < 0.13
    assert not set("IOQU") & set("".join(texts))
    assert not {t[0] for t in texts if not is_motorcycle(t)} & set("XY")


def test_plates_are_eu_format_with_dark_characters() -> None:
    rng = np.random.default_rng(1)
    texts = [t for t in (random_italian_plate(rng) for _ in range(30)) if not is_motorcycle(t)]
    cars = [render_plate(text, rng) for text in texts[:10]]
    car = render_plate("AB123CD", rng)
    motorcycle = render_plate("AB12345", rng)
    assert car.mode == motorcycle.mode == "RGB"
    assert 4.5 < car.width / car.height < 5.0
    assert 0.9 < motorcycle.width / motorcycle.height < 1.3
    banded = 0
    for plate in cars:
        pixels = np.asarray(plate, dtype=np.int32)
        r, g, b = pixels[plate.height // 2, plate.width // 60]  # the middle of the left band
        banded += b > r + 60 and b > g + 30
        middle = pixels[plate.height // 4: 3 * plate.height // 4,
                        plate.width // 8: 7 * plate.width // 8].sum(axis=2)
        dark = float((middle < 3 * 90).mean())
        assert 0.15 < dark < 0.6, dark  # characters, not a blank or black plate
    assert banded >= 8  # most have the blue EU band; a few old ones are white all across


@pytest.fixture(scope="module")
def plate_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_set(tmp_path_factory.mktemp("plates"), SET_SIZE, seed=7)


def read_labels(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def test_set_has_a_label_for_every_plate_inside_its_image(plate_set: Path) -> None:
    out = plate_set.parent
    header, rows = read_labels(plate_set)
    assert header == ["image", "country", "x", "y", "w", "h", "plate"]
    images = sorted(p.name for p in out.glob("*.jpg"))
    assert images == [f"it-{i:06d}.jpg" for i in range(SET_SIZE)]
    assert {row[0] for row in rows} == set(images)  # every image has a plate
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for name, country, *box_text, text in rows:
        x, y, w, h = map(int, box_text)
        with Image.open(out / name) as image:
            assert (image.format, image.size) == ("JPEG", (1280, 720))
        assert country == "IT" and classify(text)[0].country == "IT"
        assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720
        assert 70 <= w <= 400 and h >= 12, (name, w, h)
        for x2, y2, w2, h2 in boxes.get(name, []):
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "overlap"
        boxes.setdefault(name, []).append((x, y, w, h))


def test_same_seed_same_bytes_other_seed_other_images(plate_set: Path, tmp_path: Path) -> None:
    again = write_set(tmp_path / "again", 2, seed=7)
    other = write_set(tmp_path / "other", 2, seed=8)
    _, rows = read_labels(plate_set)
    _, rows_again = read_labels(again)
    assert rows_again == [row for row in rows if row[0] in ("it-000000.jpg", "it-000001.jpg")]
    for name in ("it-000000.jpg", "it-000001.jpg"):
        first = (plate_set.parent / name).read_bytes()
        assert (again.parent / name).read_bytes() == first
        assert (other.parent / name).read_bytes() != first


def test_scene_shows_the_plates_asked_for() -> None:
    image, labels = street_scene(np.random.default_rng(3), 960, 540, plates=["AB123CD", "EF45678"])
    assert image.size == (960, 540)
    assert sorted(label.text for label in labels) == ["AB123CD", "EF45678"]
    with pytest.raises(ValueError):
        street_scene(np.random.default_rng(3), plates=4)


def test_cli_writes_a_set(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim_app, ["plates", str(tmp_path / "set"), "--count", "2",
                                          "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 images" in result.output
    header, rows = read_labels(tmp_path / "set" / "labels.csv")
    assert header[0] == "image" and len(rows) >= 2


def test_schedule_gives_each_plate_a_readable_second_one_after_another() -> None:
    passes = traffic_schedule(CLIP_PLATES, 8, 25)
    assert [p.plate for p in passes] == list(CLIP_PLATES)
    assert all(p.end - p.start >= 1.0 for p in passes), passes
    assert passes[0].start >= 0 and passes[0].end < passes[1].start and passes[1].end < 8
    default = traffic_schedule(["AB123CD", "GF456HJ", "ZA000AA", "DE12345"])
    assert len(default) == 4 and default[-1].end < 24  # 6 s a plate by default
    with pytest.raises(ValueError):
        traffic_schedule(CLIP_PLATES, 4)  # 2 s a car is too short to pass


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    width, height = CLIP_SIZE
    return traffic_clip(tmp_path_factory.mktemp("traffic"), CLIP_PLATES, seed=1, width=width,
                        height=height, seconds=8)


def test_traffic_clip_is_cached_h264_in_whole_gops(clip_path: Path) -> None:
    info = ffprobe_json("-show_entries", "stream=codec_name,width,height,r_frame_rate,"
                        "has_b_frames", str(clip_path))
    assert info["streams"] == [{"codec_name": "h264", "width": CLIP_SIZE[0],
                                "height": CLIP_SIZE[1], "r_frame_rate": "25/1",
                                "has_b_frames": 0}]
    frames = ffprobe_json("-show_entries", "packet=flags", str(clip_path))["packets"]
    assert isinstance(frames, list) and len(frames) == 8 * 25
    assert [i for i, f in enumerate(frames) if f["flags"].startswith("K")] == [0, 50, 100, 150]
    made = clip_path.stat().st_mtime_ns
    again = traffic_clip(clip_path.parent, CLIP_PLATES, seed=1, width=CLIP_SIZE[0],
                         height=CLIP_SIZE[1], seconds=8)
    assert again == clip_path and clip_path.stat().st_mtime_ns == made  # made once
    assert not list(clip_path.parent.glob(".*.tmp"))


def test_camera_simulator_serves_the_traffic_clip(clip_path: Path, tmp_path: Path) -> None:
    with CameraSimulator(["CAM-T01"], cache_dir=tmp_path, main_clip=clip_path,
                         sub_streams=False) as sim:
        assert probe_stream(sim.url("CAM-T01")) == {
            "codec_name": "h264", "width": CLIP_SIZE[0], "height": CLIP_SIZE[1],
            "r_frame_rate": "25/1"}
        with pytest.raises(SimulatorError):
            sim.url("CAM-T01", sub=True)
    assert not list(tmp_path.iterdir())  # the standard clip was not made
