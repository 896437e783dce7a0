"""Tattile XML transits: samples in, RawReads out; bad messages refused by field."""

from __future__ import annotations

import base64
import contextlib
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigila.core import InvalidInput, VigilaError
from vigila.reads.adapters import parse_tattile
from vigila.reads.adapters._common import MAX_BODY_BYTES
from vigila.reads.raw import RawImage, RawRead

SAMPLES = Path(__file__).parent / "samples"
TRANSIT = (SAMPLES / "tattile_transit.xml").read_bytes()
PLATE_JPEG = (SAMPLES / "tat_plate.jpg").read_bytes()
SCENE_JPEG = (SAMPLES / "tat_scene.jpg").read_bytes()

MINIMAL = b"""<TRANSIT><SN>210457</SN><TRANSIT_ID>7</TRANSIT_ID><DATE>2026-01-15</DATE>
<TIME>07-30-00</TIME><PLATE_STRING>FA001AA</PLATE_STRING></TRANSIT>"""


def refused(body: bytes) -> InvalidInput:
    """The fault of a one-transit message: raised for the message, returned for its transit."""
    try:
        result = parse_tattile(body)
    except InvalidInput as exc:
        return exc
    assert len(result) == 1 and isinstance(result[0], InvalidInput), result
    return result[0]


def test_sample_gives_every_field() -> None:
    assert parse_tattile(TRANSIT) == [
        RawRead(
            plate="EZ482KL",
            device="210457",
            # 18:42:07.350 Italian summer time (UTC+2)
            time=datetime(2026, 7, 14, 16, 42, 7, 350000, tzinfo=UTC),
            event_id="210457/48213/2026-07-14T16:42:07.350000Z",
            confidence=0.87,
            direction="outbound",
            lane=1,
            country="IT",
            images=[RawImage("plate", PLATE_JPEG, None), RawImage("context", SCENE_JPEG, None)],
            vendor="tattile",
            extra={
                "sn": "210457",
                "netbiosname": "VEGA-EMILIA-EST",
                "transit_id": "48213",
                "nread": "5",
                "class_string": "CAR",
                "country": "ITA",
                "direction": "LEAVING",
                "lane": "1",
                "time_local": "2026-07-14 18-42-07-350",
            },
        )
    ]


def test_minimal_transit_in_winter_time() -> None:
    [read] = parse_tattile(MINIMAL)
    assert read.time == datetime(2026, 1, 15, 6, 30, tzinfo=UTC)  # UTC+1 in January
    assert read.event_id == "210457/7/2026-01-15T06:30:00Z"
    assert (read.confidence, read.direction, read.lane, read.country, read.images) == (
        None,
        None,
        None,
        None,
        [],
    )


def test_event_id_is_stable_and_needs_a_transit_id() -> None:
    assert parse_tattile(TRANSIT)[0].event_id == parse_tattile(TRANSIT)[0].event_id
    without = MINIMAL.replace(b"<TRANSIT_ID>7</TRANSIT_ID>", b"")
    assert parse_tattile(without)[0].event_id is None


def test_ambiguous_autumn_hour_takes_summer_time() -> None:
    # 25 October 2026, 02:30 happens twice in Italy; the first (UTC+2) is taken.
    body = MINIMAL.replace(b"2026-01-15", b"2026-10-25").replace(b"07-30-00", b"02:30:00")
    assert parse_tattile(body)[0].time == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_several_transits_and_unread_plates() -> None:
    body = (
        b"<TRANSITS>"
        + MINIMAL
        + MINIMAL.replace(b"FA001AA", b"").replace(b">7<", b">8<")  # OCR not read
        + MINIMAL.replace(b"FA001AA", b"FB002BB").replace(b">7<", b">9<")
        + b"</TRANSITS>"
    )
    assert [r.plate for r in parse_tattile(body) if isinstance(r, RawRead)] == [
        "FA001AA", "FB002BB"]
    # One transit at fault in several: it comes back as its error, in its place.
    broken = body.replace(b"<DATE>2026-01-15</DATE>", b"", 1)
    fault, *rest = parse_tattile(broken)
    assert isinstance(fault, InvalidInput) and fault.errors[0].field == "TRANSIT[0].DATE"
    assert [r.plate for r in rest if isinstance(r, RawRead)] == ["FB002BB"]


def test_plate_with_country_suffix_and_device_name() -> None:
    body = MINIMAL.replace(
        b"<PLATE_STRING>FA001AA</PLATE_STRING>", b"<PLATE>46HVR9-NLD</PLATE>"
    ).replace(b"<SN>210457</SN>", b"<NETBIOSNAME>VEGA-NORD</NETBIOSNAME>")
    [read] = parse_tattile(body)
    assert (read.plate, read.country, read.device) == ("46HVR9", "NL", "VEGA-NORD")


@pytest.mark.parametrize(
    ("word", "expected"),
    [(b"APPROACHING", "inbound"), (b"in", "inbound"), (b"away", "outbound"), (b"0", None)],
)
def test_direction_mapping(word: bytes, expected: str | None) -> None:
    body = TRANSIT.replace(
        b"<DIRECTION>LEAVING</DIRECTION>", b"<DIRECTION>" + word + b"</DIRECTION>"
    )
    assert parse_tattile(body)[0].direction == expected


def test_infrared_scene_and_empty_image_elements() -> None:
    scene = base64.b64encode(SCENE_JPEG)
    body = MINIMAL.replace(
        b"</TRANSIT>", b"<IMAGE_OCR></IMAGE_OCR><IMAGE_BW>" + scene + b"</IMAGE_BW></TRANSIT>"
    )
    assert parse_tattile(body)[0].images == [RawImage("context", SCENE_JPEG, None)]


def test_latin1_message_is_read() -> None:
    body = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + MINIMAL.replace(
        b"<SN>210457</SN>", b"<SN>210457</SN><NETBIOSNAME>VIA G\xc8NOVA</NETBIOSNAME>"
    )
    assert parse_tattile(body)[0].extra["netbiosname"] == "VIA G\u00c8NOVA"


# --- refused messages --------------------------------------------------------------------


def test_empty_body() -> None:
    assert refused(b"").errors[0].field == "body"


def test_not_xml() -> None:
    assert "malformed XML" in refused(b"PLATE=FA001AA;DATE=2026-01-15").detail


def test_dtd_and_entities_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><TRANSIT>&b;</TRANSIT>'
    )
    assert "DTD" in refused(laughs).detail
    external = b'<!DOCTYPE t SYSTEM "file:///etc/passwd"><TRANSIT/>'
    assert "DTD" in refused(external).detail


def test_utf16_is_refused() -> None:
    assert "UTF-8" in refused(MINIMAL.decode().encode("utf-16")).detail
    assert "UTF-8" in refused(MINIMAL.decode().encode("utf-16-be")).detail


def test_missing_plate_element() -> None:
    body = MINIMAL.replace(b"<PLATE_STRING>FA001AA</PLATE_STRING>", b"")
    assert refused(body).errors[0].field == "PLATE_STRING"


@pytest.mark.parametrize(
    ("date", "time", "field"),
    [
        (b"2026-02-30", b"07-30-00", "DATE/TIME"),
        (b"2026-01-15", b"25-61-00", "DATE/TIME"),
        (b"15/01/2026", b"07-30-00", "DATE"),
        (b"1970-01-01", b"00-00-00", "DATE"),
        (b"2026-01-15", b"half past seven", "TIME"),
    ],
)
def test_absurd_date(date: bytes, time: bytes, field: str) -> None:
    body = MINIMAL.replace(b"2026-01-15", date).replace(b"07-30-00", time)
    assert refused(body).errors[0].field == field


def test_missing_date_or_time() -> None:
    assert refused(MINIMAL.replace(b"<DATE>2026-01-15</DATE>", b"")).errors[0].field == "DATE"
    assert refused(MINIMAL.replace(b"<TIME>07-30-00</TIME>", b"")).errors[0].field == "TIME"


def test_missing_device() -> None:
    assert refused(MINIMAL.replace(b"<SN>210457</SN>", b"")).errors[0].field == "SN"


def test_bad_base64() -> None:
    body = MINIMAL.replace(b"</TRANSIT>", b"<IMAGE_COL>not*base64!</IMAGE_COL></TRANSIT>")
    error = refused(body)
    assert error.errors[0].field == "IMAGE_COL"
    assert "base64" in error.errors[0].message


def test_a_picture_too_large_is_left_to_the_ingest() -> None:
    # The ingest flags it and keeps the read, as on the generic endpoint.
    huge = b"\xff\xd8\xff" + bytes(6 * 1024 * 1024)
    body = MINIMAL.replace(
        b"</TRANSIT>", b"<IMAGE_OCR>" + base64.b64encode(huge) + b"</IMAGE_OCR></TRANSIT>")
    [read] = parse_tattile(body)
    assert isinstance(read, RawRead) and read.images == [RawImage("plate", huge, None)]


def test_body_too_large() -> None:
    assert "limit" in refused(b" " * (MAX_BODY_BYTES + 1)).detail


def test_bad_score_and_lane() -> None:
    assert (
        refused(MINIMAL.replace(b"</TRANSIT>", b"<OCRSCORE>high</OCRSCORE></TRANSIT>"))
        .errors[0]
        .field
        == "OCRSCORE"
    )
    assert (
        refused(MINIMAL.replace(b"</TRANSIT>", b"<LANE>-2</LANE></TRANSIT>")).errors[0].field
        == "LANE"
    )


def test_mutated_messages_never_crash() -> None:
    rng = random.Random(11)
    tokens = [b"<", b"</", b">", b"\x00", b"&#0;", b"2026-13-40", b"99-99-99", b"=", b"@@"]
    tokens += [b"9" * 30, b"nan", b"-1", b"\xc3", b"<!DOCTYPE", b"<TRANSIT>", b"</TRANSIT>"]
    for _ in range(1500):
        data = bytearray(rng.choice([TRANSIT, MINIMAL]))
        for _ in range(rng.randint(1, 5)):
            position = rng.randrange(len(data) + 1)
            if rng.random() < 0.4:
                del data[position : position + rng.randint(1, 30)]
            else:
                data[position:position] = rng.choice(tokens)
        with contextlib.suppress(VigilaError):
            parse_tattile(bytes(data))
