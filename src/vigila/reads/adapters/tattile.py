"""Tattile readers (Vega Smart, Vega Basic, and OEM versions): one XML message per transit.

No public, authoritative description of Tattile's HTTP XML message was found (the Vega
User Guide 6.47 is published, but only its contents could be consulted). Vega units
compose their outgoing messages from a template of tags chosen by the installer. The
closest public tag table found is the one of the Nedap ANPR camera's message actions
(Nedap ANPR installation guide, appendix B), which this adapter assumes the Vega
firmware shares: `%DATE` YYYY-MM-DD, `%TIME` HH-MM-SS, `%PLATE_STRING`, `%PLATE`
(plate-country, e.g. `46HVR9-NLD`), `%PLATE_COUNTRY` (alpha-3, e.g. `NLD`), `%OCRSCORE`,
`%TRANSIT_ID`, `%SN`, `%NETBIOSNAME`, `%DIRECTION`, `%NREAD`, `%IMAGE_BW`, `%IMAGE_COL`.
Vigila expects the unit's HTTP action to send those values as XML elements of the same
names, images base64-encoded, e.g.:

    <TRANSIT>
      <SN>…</SN><NETBIOSNAME>…</NETBIOSNAME><TRANSIT_ID>…</TRANSIT_ID>
      <DATE>2026-11-24</DATE><TIME>08-15-02-250</TIME>
      <PLATE_STRING>…</PLATE_STRING><PLATE_COUNTRY>ITA</PLATE_COUNTRY>
      <OCRSCORE>0-100</OCRSCORE><LANE>1</LANE><DIRECTION>APPROACHING</DIRECTION>
      <IMAGE_OCR>base64 plate crop</IMAGE_OCR><IMAGE_COL>base64 colour scene</IMAGE_COL>
    </TRANSIT>

The mapping must be checked against the manual of the unit being installed and the
template configured on it. What this adapter relies on:

- Element names are matched case-insensitively, without namespace. The root may be
  one transit, or hold several `TRANSIT` elements (a unit flushing its buffer).
- Plate: `PLATE_STRING`; else `PLATE`, whose `-CCC` country suffix is cut off. An
  empty plate (the unit's "OCR not read" / "no plate" transits) gives no read.
- Country: `PLATE_COUNTRY` (or `COUNTRY`/`NATIONALITY`), alpha-3, alpha-2 or an English
  name, mapped to alpha-2; the raw value stays in `extra["country"]`.
- Confidence: `OCRSCORE` (or `OCR_SCORE`), 0-100, scaled to 0-1.
- Time: `DATE` and `TIME` are the unit's local clock without an offset, read as Italian
  civil time (Europe/Rome, zoneinfo) and converted to UTC. TIME may carry
  milliseconds (HH-MM-SS-mmm).
- Device: `SN` (serial), else `NETBIOSNAME`, else `DEVICE`/`DEVICE_NAME`.
- Event id: device/`TRANSIT_ID`/local date-time: the transit counter alone restarts
  with the unit, the time of the transit tells those apart, and a retry repeats all
  three. Without a `TRANSIT_ID` there is no event id.
- Lane: `LANE` (0 means not said). Direction: `DIRECTION`, approaching words
  (approaching, incoming, in...) are "inbound", leaving words (leaving, away, out...)
  "outbound", anything else none; the raw value stays in `extra["direction"]`.
- Images: `IMAGE_OCR`/`IMAGE_PLATE`/`PLATE_IMAGE` are the plate crop; `IMAGE_COL`/
  `IMAGE_CTX`/`CONTEXT_IMAGE` and `IMAGE_BW` (the infrared scene) are context. Empty
  elements are skipped; bad base64 is refused naming the element. The unit declares
  no content type (its images are JPEG by documentation): ingest checks the bytes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from vigila.core import InvalidInput
from vigila.reads.adapters._common import (
    MAX_PICTURES,
    check_body_size,
    clip,
    country,
    decode_base64,
    direction,
    event_id,
    extras,
    lane,
    local,
    local_instant,
    parse_xml,
    percent,
    text,
)
from vigila.reads.raw import RawImage, RawRead

VENDOR = "tattile"
MAX_TRANSITS = 1000
TRANSIT_NAMES = ("TRANSIT", "TRANSITO")
PLATE_IMAGES = ("IMAGE_OCR", "IMAGE_PLATE", "PLATE_IMAGE")
CONTEXT_IMAGES = ("IMAGE_COL", "IMAGE_CTX", "CONTEXT_IMAGE", "IMAGE_BW")
DEVICE_FIELDS = ("SN", "NETBIOSNAME", "DEVICE", "DEVICE_NAME")
# Extra vendor fields kept for the record, when the template includes them.
EXTRA_FIELDS = (
    "SN",
    "NETBIOSNAME",
    "TRANSIT_ID",
    "NREAD",
    "CLASS",
    "CLASS_STRING",
    "SPEED",
    "BRAND",
    "MODEL",
    "COLOR",
    "NET_TRIG_ID",
)


def parse_tattile(body: bytes) -> list[RawRead | InvalidInput]:
    """The reads in one Tattile XML message; transits with no plate read are left out.

    A transit at fault comes back as its InvalidInput, in its place, so that the others
    of a message (a unit sending what it buffered while offline) are stored; the ingest
    reports it. A fault of the message itself (not XML, too large) is raised.
    """
    check_body_size(body)
    root = parse_xml(body, "body")
    names = {name.casefold() for name in TRANSIT_NAMES}
    transits = [element for element in root if local(element.tag).casefold() in names]
    if not transits:
        transits = [root]
    if len(transits) > MAX_TRANSITS:
        raise InvalidInput.on("body", f"more than {MAX_TRANSITS} transits in one message")
    reads: list[RawRead | InvalidInput] = []
    for number, transit in enumerate(transits):
        try:
            read = _transit(transit, f"TRANSIT[{number}]." if len(transits) > 1 else "")
        except InvalidInput as exc:
            reads.append(exc)
            continue
        if read is not None:
            reads.append(read)
    return reads


def _transit(transit: ET.Element, prefix: str) -> RawRead | None:
    plate = text(transit, "PLATE_STRING")
    if plate is None:
        with_country = text(transit, "PLATE")
        if with_country is None:
            raise InvalidInput.on(f"{prefix}PLATE_STRING", "missing")
        plate = re.sub(r"-[A-Za-z]{1,3}$", "", with_country)
        suffix = with_country[len(plate) + 1 :] or None
    else:
        suffix = None
    if not plate.strip():
        return None  # the unit saw a vehicle but read no plate
    device = next((value for name in DEVICE_FIELDS if (value := text(transit, name))), None)
    if device is None:
        raise InvalidInput.on(
            f"{prefix}SN", "missing: the transit names no device (SN or NETBIOSNAME)"
        )
    date, clock = text(transit, "DATE"), text(transit, "TIME")
    time = local_instant(date, clock, f"{prefix}DATE", f"{prefix}TIME")
    raw_country = text(transit, "PLATE_COUNTRY", "COUNTRY", "NATIONALITY") or suffix
    raw_direction = text(transit, "DIRECTION")
    score = text(transit, "OCRSCORE", "OCR_SCORE")
    transit_id = text(transit, "TRANSIT_ID")
    images = [
        *_images(transit, PLATE_IMAGES, "plate", prefix),
        *_images(transit, CONTEXT_IMAGES, "context", prefix),
    ]
    dropped = max(0, len(images) - MAX_PICTURES)
    extra = extras(
        [
            *((name.lower(), text(transit, name)) for name in EXTRA_FIELDS),
            ("country", raw_country),
            ("direction", raw_direction),
            ("lane", text(transit, "LANE")),
            ("time_local", f"{date} {clock}"),
            ("pictures_dropped", str(dropped) if dropped else None),
        ]
    )
    stamp = time.isoformat().replace("+00:00", "Z")
    return RawRead(
        plate=plate.strip(),
        device=clip(device, 64),
        time=time,
        event_id=event_id(device, transit_id, stamp) if transit_id else None,
        confidence=percent(score, f"{prefix}OCRSCORE") if score else None,
        direction=direction(raw_direction),
        lane=lane(text(transit, "LANE"), f"{prefix}LANE"),
        country=country(raw_country),
        images=images[:MAX_PICTURES],
        vendor=VENDOR,
        extra=extra,
    )


def _images(transit: ET.Element, names: tuple[str, ...], kind: str, prefix: str) -> list[RawImage]:
    images: list[RawImage] = []
    wanted = {name.casefold(): name for name in names}
    for element in transit:
        name = local(element.tag)
        if name.casefold() not in wanted:
            continue
        encoded = (element.text or "").strip()
        if not encoded:
            continue  # the unit had no such picture for this transit
        images.append(RawImage(kind, decode_base64(encoded, f"{prefix}{name}"), None))
    return images
