"""Hikvision ISAPI ANPR push: the `EventNotificationAlert` a camera POSTs to an HTTP host.

Wire format (ISAPI "HTTP listening"; facts from Hikvision's ISAPI / Device Network SDK
(Traffic) developer guides, XML_EventNotificationAlert_ANPR, and from captures of real
units published by integrators):

- `multipart/form-data` with one XML part (named `anpr.xml`, or after the event type)
  and JPEG parts such as `licensePlatePicture.jpg` (the plate crop) and
  `detectionPicture.jpg` (the scene), which the XML lists in
  `ANPR/pictureInfoList/pictureInfo` by `fileName` and `type`; or the XML alone as
  `application/xml` / `text/xml`.
- The XML root is `EventNotificationAlert` in the `http://www.hikvision.com/ver20/XMLSchema`
  namespace (older firmware `ver10`, newer `http://www.isapi.org/ver20/XMLSchema`); only
  local names are matched. Fields read: `ipAddress`, `ipv6Address`, `macAddress`,
  `channelID` / `dynChannelID`, `channelName`, `dateTime` (ISO 8601 with offset),
  `activePostCount`, `eventType` (`ANPR`), `eventState`, `UUID`, `picNum`, `deviceID`,
  and inside `ANPR`: `licensePlate`, `confidenceLevel` (0-100), `country`, `region`,
  `line` (lane; some firmware `laneNo`), `direction`, `plateType`, `plateColor`,
  `vehicleType`, `vehicleInfo/color`, `pictureInfoList`.

Mapping decisions:

- Any event other than an active ANPR one (heartbeat, `videoloss`, motion...) gives no
  read: an empty list, not an error. So does an ANPR event whose plate is empty or
  `unknown` (a vehicle seen, no plate read).
- `device` is the camera's `macAddress` (stable across address changes), else its
  `ipAddress`/`ipv6Address`; the HTTP route maps it to the registry device.
- `event_id` is the alert's `UUID` when the firmware sends one; otherwise
  device/channel/`dateTime`/`activePostCount`, which a retry of the same alert repeats.
- `direction`: `forward`, and approaching words, are "inbound" (the vehicle moves
  towards the camera); `reverse`/`backward`, and leaving words, are "outbound"; anything
  else (`unknown`) is no direction. Hikvision's forward/reverse are relative to the
  lane direction set in the camera's road-traffic configuration: check on site that
  forward means approaching. The raw value stays in `extra["direction"]`.
- `country` accepts alpha-2, alpha-3 or an English name (`Poland`); firmware that sends
  a numeric country index gets no country (the index stays in `extra["country"]`).
- A `dateTime` without an offset is read as Italian civil time (flagged in
  `extra["time_zone_assumed"]`); the documented format always carries the offset.
- Pictures: the `pictureInfo` of `type` `licensePlatePicture` is the plate crop, every
  other type (detection, vehicle, feature, scene) is context; a JPEG part the XML does
  not list is classed by its name. Plate crops come first; at most `MAX_PICTURES` are
  kept (the rest are counted in `extra["pictures_dropped"]`); empty parts, which some
  firmware sends, are skipped. Bytes and declared content type are kept as sent.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.utils
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from vigila.core import FieldError, InvalidInput, UnsupportedMediaType
from vigila.reads.adapters._common import (
    MAX_PICTURES,
    check_body_size,
    child,
    clip,
    country,
    direction,
    event_id,
    extras,
    instant,
    lane,
    local,
    parse_xml,
    percent,
    text,
)
from vigila.reads.raw import RawImage, RawRead

VENDOR = "hikvision"
XML_TYPES = frozenset({"application/xml", "text/xml"})
MULTIPART_TYPES = frozenset({"multipart/form-data", "multipart/mixed"})
MAX_PARTS = 16
PLATE_PICTURE_TYPES = frozenset({"licenseplatepicture", "plateimage", "licenseplateimage"})
# What firmware puts in an address field it has no value for: not an identity.
UNSPECIFIED_ADDRESSES = frozenset({"::", "0.0.0.0", "00:00:00:00:00:00"})
NO_PLATE = frozenset({"", "unknown", "none", "noplate", "no plate"})

# Hikvision's own direction words, on top of the common approaching/leaving ones.
HIKVISION_DIRECTIONS = {
    "forward": "inbound",
    "reverse": "outbound",
    "backward": "outbound",
}


@dataclass(frozen=True)
class Part:
    """One part of a multipart body."""

    name: str | None  # the form field name
    filename: str | None
    content_type: str | None  # as declared, lower-cased, without parameters
    data: bytes

    @property
    def label(self) -> str:
        return self.filename or self.name or "(unnamed part)"


def parse_hikvision(body: bytes, content_type: str) -> list[RawRead]:
    """The reads in one Hikvision ANPR push; [] for heartbeats and other events."""
    check_body_size(body)
    media, boundary = _media_type(content_type)
    if media in XML_TYPES:
        return _alert(parse_xml(body, "body"), [], "body")
    parts = split_multipart(body, boundary)
    xml_part, pictures = _sort_parts(parts)
    return _alert(parse_xml(xml_part.data, xml_part.label), pictures, xml_part.label)


def _media_type(content_type: str) -> tuple[str, str | None]:
    """The media type and, for multipart, the boundary; refuses what this endpoint can't read."""
    header = (content_type or "").strip()
    message = email.message.Message()
    message["Content-Type"] = clip(header, 1000)
    media = message.get_content_type() if header else ""
    if media in XML_TYPES:
        return media, None
    if media in MULTIPART_TYPES:
        raw = message.get_param("boundary")
        boundary = email.utils.collapse_rfc2231_value(raw) if raw is not None else None
        if not boundary:
            raise InvalidInput.on("content_type", "multipart without a boundary parameter")
        if len(boundary) > 200:
            raise InvalidInput.on("content_type", "multipart boundary longer than 200 characters")
        return media, boundary
    shown = clip(header, 100) or "none"
    raise UnsupportedMediaType(
        f"content type {shown!r}: send multipart/form-data or application/xml",
        [FieldError("content_type", f"{shown!r} is not multipart/form-data or XML")],
    )


def split_multipart(body: bytes, boundary: str | None) -> list[Part]:
    """Split a multipart body on its boundary (RFC 2046), keeping part bytes exactly.

    Lines may end in CRLF (as they should) or a bare LF. A body that ends before the
    closing boundary is refused: its last picture would be cut short.
    """
    if not boundary:
        raise InvalidInput.on("content_type", "multipart without a boundary parameter")
    try:
        delimiter = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput.on("content_type", "multipart boundary is not ASCII") from None
    position = _find_delimiter(body, delimiter, 0)
    if position < 0:
        raise InvalidInput.on(
            "body", "multipart boundary from the Content-Type not found in the body"
        )
    parts: list[Part] = []
    position += len(delimiter)
    while not body.startswith(b"--", position):  # "--" after a delimiter closes the body
        line_end = body.find(b"\n", position)
        if line_end < 0:
            raise InvalidInput.on("body", "multipart body ends inside a boundary line")
        start = line_end + 1
        following = _find_delimiter(body, delimiter, start)
        if following < 0:
            raise InvalidInput.on(
                "body", "multipart body ends without its closing boundary (truncated?)"
            )
        end = following - 2 if body[following - 2 : following] == b"\r\n" else following - 1
        if len(parts) == MAX_PARTS:
            raise InvalidInput.on("body", f"more than {MAX_PARTS} multipart parts")
        parts.append(_part(body[start : max(start, end)], len(parts) + 1))
        position = following + len(delimiter)
    return parts


def _find_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """The next delimiter line from `start`; -1 when none.

    A delimiter starts a line and is followed by "--" (the closing one) or by optional
    blanks and the end of the line: "--boundaryX" inside a picture is not one.
    """
    found = body.find(delimiter, start)
    while found >= 0:
        after = found + len(delimiter)
        if found == 0 or body[found - 1 : found] == b"\n":
            rest = body[after : after + 80].lstrip(b" \t")
            if not rest or rest[:1] in (b"\r", b"\n") or body.startswith(b"--", after):
                return found
        found = body.find(delimiter, found + 1)
    return -1


def _part(raw: bytes, number: int) -> Part:
    if raw.startswith(b"\r\n"):
        head, data = b"", raw[2:]
    elif raw.startswith(b"\n"):
        head, data = b"", raw[1:]
    else:
        crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf < lf):
            head, data = raw[:crlf], raw[crlf + 4 :]
        elif lf >= 0:
            head, data = raw[:lf], raw[lf + 2 :]
        else:
            raise InvalidInput.on(
                f"body.part[{number}]", "multipart part without a blank line after its headers"
            )
    headers = email.message.Message()
    for line in head.decode("latin-1").replace("\r\n", "\n").split("\n"):
        key, colon, value = line.partition(":")
        if colon and key.strip() and not key[:1].isspace():
            headers[key.strip()] = clip(value.strip(), 1000)
    name = _param(headers, "name", "content-disposition")
    filename = _param(headers, "filename", "content-disposition")
    content_type = headers.get_content_type() if "content-type" in headers else None
    encoding = str(headers.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            label = filename or name or f"body.part[{number}]"
            raise InvalidInput.on(label, "declared base64 but is not valid base64") from None
    return Part(name, filename, content_type, data)


def _param(headers: email.message.Message, param: str, header: str) -> str | None:
    raw = headers.get_param(param, header=header)
    if raw is None:
        return None
    value = email.utils.collapse_rfc2231_value(raw).strip()
    return clip(value, 200) or None


def _is_xml(part: Part) -> bool:
    if part.content_type in XML_TYPES:
        return True
    names = f"{part.name or ''} {part.filename or ''}".lower()
    if ".xml" in names:
        return True
    if part.content_type is None or part.content_type in {"text/plain", "application/octet-stream"}:
        return part.data.lstrip()[:1] == b"<"
    return False


def _is_picture(part: Part) -> bool:
    if part.content_type is not None and part.content_type.startswith("image/"):
        return True
    names = f"{part.name or ''} {part.filename or ''}".lower()
    if any(extension in names for extension in (".jpg", ".jpeg", ".png")):
        return True
    return part.data[:3] == b"\xff\xd8\xff" or part.data[:8] == b"\x89PNG\r\n\x1a\n"


def _sort_parts(parts: list[Part]) -> tuple[Part, list[Part]]:
    xml_parts = [part for part in parts if _is_xml(part)]
    if not xml_parts:
        raise InvalidInput.on("body", "multipart without an XML part (the EventNotificationAlert)")
    pictures = [part for part in parts if part is not xml_parts[0] and _is_picture(part)]
    return xml_parts[0], pictures


def _alert(root: ET.Element, pictures: list[Part], where: str) -> list[RawRead]:
    if local(root.tag) != "EventNotificationAlert":
        raise InvalidInput.on(
            where, f"expected an EventNotificationAlert, got <{clip(local(root.tag), 60)}>"
        )
    event_type = text(root, "eventType")
    if event_type is None or not event_type:
        raise InvalidInput.on("eventType", "missing")
    state = (text(root, "eventState") or "active").casefold()
    if event_type.casefold() != "anpr" or state == "inactive":
        return []  # a heartbeat, another kind of event, or an ANPR event withdrawn
    anpr = child(root, "ANPR")
    if anpr is None:
        raise InvalidInput.on("ANPR", "missing: an ANPR event without its ANPR element")
    plate = text(anpr, "licensePlate")
    if plate is None:
        raise InvalidInput.on("ANPR.licensePlate", "missing")
    if plate.casefold() in NO_PLATE:
        return []  # a vehicle without a readable plate: nothing to store
    device = next(
        (
            value
            for value in (text(root, name) for name in ("macAddress", "ipAddress", "ipv6Address"))
            if value and value not in UNSPECIFIED_ADDRESSES
        ),
        None,
    )
    if device is None:
        raise InvalidInput.on("ipAddress", "missing: the alert names no device")
    date_time = text(root, "dateTime")
    time, assumed = instant(date_time, "dateTime")
    score = text(anpr, "confidenceLevel")
    raw_country = text(anpr, "country")
    raw_direction = text(anpr, "direction")
    channel = text(root, "channelID") or text(root, "dynChannelID") or ""
    images, dropped, empty = _images(anpr, pictures)
    extra = extras(
        [
            ("ipAddress", text(root, "ipAddress")),
            ("macAddress", text(root, "macAddress")),
            ("channelID", channel),
            ("channelName", text(root, "channelName")),
            ("deviceID", text(root, "deviceID")),
            ("activePostCount", text(root, "activePostCount")),
            ("country", raw_country),
            ("region", text(anpr, "region")),
            ("direction", raw_direction),
            ("plateType", text(anpr, "plateType")),
            ("plateColor", text(anpr, "plateColor")),
            ("vehicleType", text(anpr, "vehicleType")),
            ("vehicleColor", text(child(anpr, "vehicleInfo"), "color")),
            ("picNum", text(root, "picNum")),
            ("time_zone_assumed", "Europe/Rome" if assumed else None),
            ("pictures_dropped", str(dropped) if dropped else None),
            ("pictures_empty", ", ".join(empty) if empty else None),
        ]
    )
    uuid = text(root, "UUID") or text(anpr, "UUID")
    if uuid:
        identity = event_id(uuid)
    else:
        identity = event_id(device, channel, date_time or "", text(root, "activePostCount") or "")
    return [
        RawRead(
            plate=plate,
            device=clip(device, 64),
            time=time,
            event_id=identity,
            confidence=percent(score, "ANPR.confidenceLevel") if score else None,
            direction=direction(raw_direction, HIKVISION_DIRECTIONS),
            lane=lane(text(anpr, "line", "laneNo"), "ANPR.line"),
            country=country(raw_country),
            images=images,
            vendor=VENDOR,
            extra=extra,
        )
    ]


def _images(anpr: ET.Element, pictures: list[Part]) -> tuple[list[RawImage], int, list[str]]:
    """The pictures as RawImages (plate crops first), how many were dropped, the empty ones."""
    declared: dict[str, str] = {}  # file name (and its stem) -> the XML's picture type
    listing = child(anpr, "pictureInfoList")
    for info in listing if listing is not None else []:
        file_name, kind = text(info, "fileName"), text(info, "type")
        if file_name and kind:
            declared.setdefault(file_name.casefold(), kind)
            declared.setdefault(file_name.rsplit(".", 1)[0].casefold(), kind)
    plates: list[RawImage] = []
    scenes: list[RawImage] = []
    empty: list[str] = []
    for part in pictures:
        if not part.data:
            empty.append(part.label)
            continue
        picture_type = next(
            (
                declared[key.casefold()]
                for key in (part.filename, part.name)
                if key and key.casefold() in declared
            ),
            None,
        )
        if picture_type is not None:
            is_plate = picture_type.casefold() in PLATE_PICTURE_TYPES
        else:
            is_plate = "plate" in part.label.casefold()
        # Any size: one over the ingest's limit is flagged there and the read kept.
        image = RawImage("plate" if is_plate else "context", part.data, part.content_type)
        (plates if is_plate else scenes).append(image)
    ordered = plates + scenes
    return ordered[:MAX_PICTURES], max(0, len(ordered) - MAX_PICTURES), empty
