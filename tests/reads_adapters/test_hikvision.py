"""Hikvision ISAPI ANPR push: samples in, RawReads out; bad bodies refused by field."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigila.core import InvalidInput, UnsupportedMediaType, VigilaError
from vigila.reads.adapters import parse_hikvision
from vigila.reads.adapters._common import MAX_BODY_BYTES
from vigila.reads.adapters.hikvision import split_multipart
from vigila.reads.raw import RawImage, RawRead

SAMPLES = Path(__file__).parent / "samples"
MULTIPART = "multipart/form-data; boundary=boundary"
PLATE_JPEG = (SAMPLES / "hik_plate.jpg").read_bytes()
SCENE_JPEG = (SAMPLES / "hik_scene.jpg").read_bytes()
ANPR_XML = (SAMPLES / "hikvision_anpr.xml").read_bytes()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def form(*parts: tuple[dict[str, str], bytes], boundary: str = "boundary") -> bytes:
    """A multipart/form-data body; each part is (headers, data)."""
    chunks: list[bytes] = []
    for headers, data in parts:
        chunks.append(f"--{boundary}\r\n".encode())
        chunks += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        chunks += [b"\r\n", data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def file_part(name: str, content_type: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'form-data; name="{name}"; filename="{name}"',
        "Content-Type": content_type,
    }


def anpr_form(xml: bytes = ANPR_XML, plate: bytes = PLATE_JPEG, scene: bytes = SCENE_JPEG) -> bytes:
    return form(
        (file_part("anpr.xml", 'text/xml; charset="UTF-8"'), xml),
        (file_part("detectionPicture.jpg", "image/jpeg"), scene),
        (file_part("licensePlatePicture.jpg", "image/jpeg"), plate),
    )


def refused(body: bytes, content_type: str = MULTIPART) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_hikvision(body, content_type)
    return caught.value


# --- the samples -------------------------------------------------------------------------


def test_multipart_capture_gives_every_field() -> None:
    reads = parse_hikvision(sample("hikvision_anpr_multipart.bin"), MULTIPART)
    assert reads == [
        RawRead(
            plate="GF123XZ",
            device="4c:bd:8f:2a:71:0e",
            time=datetime(2026, 11, 24, 7, 15, 2, tzinfo=UTC),  # 08:15:02+01:00
            event_id="7d3c0f7e-5b21-4c8e-9a43-2f61d0b8a915",
            confidence=0.94,
            direction="inbound",
            lane=2,
            country="IT",
            images=[
                RawImage("plate", PLATE_JPEG, "image/jpeg"),
                RawImage("context", SCENE_JPEG, "image/jpeg"),
            ],
            vendor="hikvision",
            extra={
                "ipAddress": "10.20.1.31",
                "macAddress": "4c:bd:8f:2a:71:0e",
                "channelID": "1",
                "channelName": "Varco Via Roma ingresso",
                "deviceID": "VR-IN-01",
                "activePostCount": "1247",
                "country": "Italy",
                "direction": "forward",
                "plateType": "unknown",
                "plateColor": "white",
                "vehicleType": "SUVMPV",
                "vehicleColor": "gray",
                "picNum": "2",
            },
        )
    ]
    assert reads[0].time is not None and reads[0].time.tzinfo is UTC


def test_plain_xml_without_uuid_or_mac() -> None:
    """ISAPI namespace, no UUID, numeric country index, summer time with milliseconds."""
    reads = parse_hikvision(sample("hikvision_anpr_isapi.xml"), "application/xml; charset=UTF-8")
    assert reads == [
        RawRead(
            plate="CR514WT",
            device="10.20.4.12",
            time=datetime(2026, 7, 3, 19, 47, 55, 412000, tzinfo=UTC),  # 21:47:55.412+02:00
            event_id="10.20.4.12/1/2026-07-03T21:47:55.412+02:00/88",
            confidence=0.81,
            direction="outbound",
            lane=1,
            country=None,
            images=[],
            vendor="hikvision",
            extra={
                "ipAddress": "10.20.4.12",
                "channelID": "1",
                "channelName": "Viale Europa uscita",
                "activePostCount": "88",
                "country": "5",
                "direction": "reverse",
                "plateType": "unknown",
                "plateColor": "unknown",
                "vehicleType": "vehicle",
            },
        )
    ]


def test_event_id_is_stable_across_a_retry() -> None:
    first = parse_hikvision(sample("hikvision_anpr_isapi.xml"), "text/xml")
    again = parse_hikvision(sample("hikvision_anpr_isapi.xml"), "text/xml")
    assert first[0].event_id == again[0].event_id
    other = sample("hikvision_anpr_isapi.xml").replace(b">88<", b">89<")
    assert parse_hikvision(other, "text/xml")[0].event_id != first[0].event_id


def test_heartbeat_and_other_events_give_no_read() -> None:
    assert parse_hikvision(sample("hikvision_heartbeat.xml"), "application/xml") == []
    motion = ANPR_XML.replace(b"<eventType>ANPR<", b"<eventType>VMD<")
    assert parse_hikvision(motion, "application/xml") == []
    inactive = ANPR_XML.replace(b">active<", b">inactive<")
    assert parse_hikvision(anpr_form(inactive), MULTIPART) == []


@pytest.mark.parametrize("plate", [b"", b"unknown", b"  "])
def test_vehicle_without_plate_gives_no_read(plate: bytes) -> None:
    xml = ANPR_XML.replace(
        b"<licensePlate>GF123XZ</licensePlate>", b"<licensePlate>" + plate + b"</licensePlate>"
    )
    assert parse_hikvision(anpr_form(xml), MULTIPART) == []


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (b"forward", "inbound"),
        (b"approaching", "inbound"),
        (b"reverse", "outbound"),
        (b"Leaving", "outbound"),
        (b"unknown", None),
        (b"", None),
    ],
)
def test_direction_mapping(word: bytes, expected: str | None) -> None:
    xml = ANPR_XML.replace(
        b"<direction>forward</direction>", b"<direction>" + word + b"</direction>"
    )
    assert parse_hikvision(xml, "application/xml")[0].direction == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"Poland", "PL"), (b"IT", "IT"), (b"deu", "DE"), (b"UK", "GB"), (b"64", None), (b"", None)],
)
def test_country_forms(value: bytes, expected: str | None) -> None:
    xml = ANPR_XML.replace(b"<country>Italy</country>", b"<country>" + value + b"</country>")
    assert parse_hikvision(xml, "application/xml")[0].country == expected


def test_lane_zero_is_no_lane_and_lane_no_is_read() -> None:
    zero = ANPR_XML.replace(b"<line>2</line>", b"<line>0</line>")
    assert parse_hikvision(zero, "application/xml")[0].lane is None
    renamed = ANPR_XML.replace(b"<line>2</line>", b"<laneNo>3</laneNo>")
    assert parse_hikvision(renamed, "application/xml")[0].lane == 3


def test_time_without_offset_is_italian_time() -> None:
    xml = ANPR_XML.replace(b"2026-11-24T08:15:02+01:00", b"2026-07-01T10:00:00")
    read = parse_hikvision(xml, "application/xml")[0]
    assert read.time == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert read.extra["time_zone_assumed"] == "Europe/Rome"
    utc = ANPR_XML.replace(b"2026-11-24T08:15:02+01:00", b"2026-11-24T07:15:02Z")
    assert parse_hikvision(utc, "application/xml")[0].time == datetime(
        2026, 11, 24, 7, 15, 2, tzinfo=UTC
    )


def test_device_falls_back_to_ip_address() -> None:
    xml = ANPR_XML.replace(b"<macAddress>4c:bd:8f:2a:71:0e</macAddress>", b"")
    assert parse_hikvision(xml, "application/xml")[0].device == "10.20.1.31"


# --- multipart details -------------------------------------------------------------------


def test_pictures_classed_by_name_when_not_listed_and_parts_without_names() -> None:
    xml = ANPR_XML.replace(b"licensePlatePicture.jpg", b"other.jpg")  # no longer matches a part
    body = form(
        ({"Content-Type": "application/xml"}, xml),  # no name at all
        (file_part("vehiclePicture.jpg", "image/jpeg"), SCENE_JPEG),
        (file_part("licensePlatePicture.jpg", "image/pjpeg"), PLATE_JPEG),
        ({}, SCENE_JPEG),  # no headers at all: recognised as a JPEG
    )
    images = parse_hikvision(body, MULTIPART)[0].images
    assert images == [
        RawImage("plate", PLATE_JPEG, "image/pjpeg"),
        RawImage("context", SCENE_JPEG, "image/jpeg"),
        RawImage("context", SCENE_JPEG, None),
    ]


def test_xml_part_named_after_the_event_type_and_lf_line_ends() -> None:
    body = form(
        ({"Content-Disposition": 'form-data; name="ANPR"'}, ANPR_XML),
        (file_part("licensePlatePicture.jpg", "image/jpeg"), PLATE_JPEG),
    ).replace(b"\r\n--boundary", b"\n--boundary")
    read = parse_hikvision(body, 'multipart/form-data; boundary="boundary"')[0]
    assert read.plate == "GF123XZ"
    assert read.images == [RawImage("plate", PLATE_JPEG, "image/jpeg")]


def test_empty_picture_parts_are_skipped_and_surplus_dropped() -> None:
    body = form(
        (file_part("anpr.xml", "text/xml"), ANPR_XML),
        (file_part("licensePlatePicture.jpg", "image/jpeg"), b""),
        *[(file_part(f"detection{n}.jpg", "image/jpeg"), SCENE_JPEG) for n in range(5)],
    )
    read = parse_hikvision(body, MULTIPART)[0]
    assert len(read.images) == 4
    assert read.extra["pictures_dropped"] == "1"
    assert read.extra["pictures_empty"] == "licensePlatePicture.jpg"


def test_multipart_split_keeps_binary_bytes_exactly() -> None:
    rng = random.Random(20261124)
    tricky = [b"\r\n", b"\n", b"\r", b"--boundar", b"\r\n--boundaryX", b"--", b"\r\n\r\n"]
    for _ in range(200):
        payload = b"".join(
            rng.choice(tricky) if rng.random() < 0.3 else bytes([rng.randrange(256)])
            for _ in range(rng.randrange(0, 300))
        )
        parts = split_multipart(form(({"Content-Type": "image/jpeg"}, payload)), "boundary")
        assert [part.data for part in parts] == [payload]


# --- refused bodies ----------------------------------------------------------------------


def test_empty_body() -> None:
    assert refused(b"").errors[0].field == "body"
    assert refused(b"  \r\n", "application/xml").errors[0].field == "body"


def test_not_xml() -> None:
    error = refused(b"plate=GF123XZ&time=now", "application/xml")
    assert "malformed XML" in error.detail


def test_wrong_root_element() -> None:
    error = refused(b"<ResponseStatus><statusCode>1</statusCode></ResponseStatus>", "text/xml")
    assert "EventNotificationAlert" in error.detail


def test_dtd_and_entities_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<EventNotificationAlert>&lol2;</EventNotificationAlert>"
    )
    assert "DTD" in refused(laughs, "application/xml").detail
    assert "DTD" in refused(anpr_form(laughs)).detail


def test_utf16_and_odd_encodings_are_refused() -> None:
    utf16 = ANPR_XML.decode().replace("UTF-8", "UTF-16").encode("utf-16")
    assert "UTF-8" in refused(utf16, "application/xml").detail
    declared = ANPR_XML.replace(b'encoding="UTF-8"', b'encoding="UTF-7"')
    assert "encoding" in refused(declared, "application/xml").detail


def test_missing_plate_element() -> None:
    xml = ANPR_XML.replace(b"<licensePlate>GF123XZ</licensePlate>", b"")
    assert refused(anpr_form(xml)).errors[0].field == "ANPR.licensePlate"
    no_anpr = ANPR_XML[: ANPR_XML.index(b"<ANPR>")] + ANPR_XML[ANPR_XML.index(b"</ANPR>") + 7 :]
    assert refused(no_anpr, "application/xml").errors[0].field == "ANPR"


@pytest.mark.parametrize(
    "when",
    [b"2026-13-45T08:15:02+01:00", b"1970-01-01T00:00:00+00:00", b"yesterday", b"2026-11-24"],
)
def test_absurd_date(when: bytes) -> None:
    xml = ANPR_XML.replace(b"2026-11-24T08:15:02+01:00", when)
    assert refused(anpr_form(xml)).errors[0].field == "dateTime"


def test_missing_date() -> None:
    xml = ANPR_XML.replace(b"<dateTime>2026-11-24T08:15:02+01:00</dateTime>", b"")
    error = refused(xml, "application/xml")
    assert error.errors[0].field == "dateTime"
    assert "missing" in error.errors[0].message


def test_bad_confidence_lane_and_device() -> None:
    assert refused(ANPR_XML.replace(b">94<", b">140<"), "text/xml").errors[0].field == (
        "ANPR.confidenceLevel"
    )
    assert refused(ANPR_XML.replace(b"<line>2<", b"<line>two<"), "text/xml").errors[0].field == (
        "ANPR.line"
    )
    anonymous = ANPR_XML.replace(b"<macAddress>4c:bd:8f:2a:71:0e</macAddress>", b"").replace(
        b"<ipAddress>10.20.1.31</ipAddress>", b""
    )
    assert refused(anonymous, "text/xml").errors[0].field == "ipAddress"


def test_a_picture_too_large_is_left_to_the_ingest() -> None:
    # The ingest flags it and keeps the read (tests/reads/test_vendors.py): a picture over
    # the limit must not cost the plate, and with it a hotlist alarm.
    huge = b"\xff\xd8\xff" + bytes(6 * 1024 * 1024)
    [read] = parse_hikvision(anpr_form(scene=huge), MULTIPART)
    assert read.plate and [len(i.data) for i in read.images if i.kind == "context"] == [
        len(huge)]


def test_body_too_large() -> None:
    assert "limit" in refused(bytes(MAX_BODY_BYTES + 1)).detail


def test_multipart_without_xml_part() -> None:
    body = form((file_part("licensePlatePicture.jpg", "image/jpeg"), PLATE_JPEG))
    error = refused(body)
    assert error.errors[0].field == "body"
    assert "XML part" in error.errors[0].message


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", 'multipart/mixed; boundary=""'],
)
def test_multipart_without_boundary(content_type: str) -> None:
    assert refused(anpr_form(), content_type).errors[0].field == "content_type"


def test_garbled_or_truncated_boundary() -> None:
    assert "not found" in refused(anpr_form(), "multipart/form-data; boundary=other").detail
    truncated = anpr_form()[:-40]
    assert "closing boundary" in refused(truncated).detail
    no_blank_line = form(({"Content-Type": "text/xml"}, b"")).replace(b"\r\n\r\n", b"\r\n")
    assert refused(no_blank_line).errors[0].field.startswith("body")


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/json", "", "garbage"])
def test_wrong_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_hikvision(ANPR_XML, content_type)
    assert caught.value.errors[0].field == "content_type"


def test_mutated_bodies_never_crash() -> None:
    """Whatever arrives, the adapter answers with reads or a VigilaError, nothing else."""
    rng = random.Random(7)
    seeds = [sample("hikvision_anpr_multipart.bin"), ANPR_XML]
    tokens = [b"<", b"</", b">", b"\r\n", b"--boundary", b"--boundary--", b"\x00", b"&#0;"]
    tokens += [b"2026-13-40", b"9" * 30, b"nan", b"-1", b"\xc3", b"unknown", b'"']
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 5)):
            position = rng.randrange(len(data) + 1)
            if rng.random() < 0.4:
                del data[position : position + rng.randint(1, 30)]
            else:
                data[position:position] = rng.choice(tokens)
        content_type = MULTIPART if data.startswith(b"--") else "application/xml"
        with contextlib.suppress(VigilaError):
            parse_hikvision(bytes(data), content_type)
