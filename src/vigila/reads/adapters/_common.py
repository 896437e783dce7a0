"""What the adapters share: size limits, safe XML, times, numbers, countries, directions.

Every helper refuses bad input with `InvalidInput` naming the vendor's field, so an
installer reading the error knows which tag of the unit's message to fix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from vigila.core import InvalidInput

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_PICTURES = 4  # per read, as the generic JSON endpoint allows
MAX_EVENT_ID = 128  # as the generic JSON endpoint allows
MAX_EXTRA_CHARS = 200  # a vendor field kept for the record is a label, not a payload

# Italian installations: a unit that sends a wall-clock time without an offset is on
# Italian civil time. In the autumn hour that happens twice the first (summer) one is
# taken (zoneinfo's fold=0); a time in the skipped spring hour is read with the offset
# in force just before the change.
LOCAL_ZONE = ZoneInfo("Europe/Rome")

# A reader's clock that says 1970 or 2150 was never set (or is broken): refuse the time
# instead of filing the transit decades away. Ingest judges plausibility against "now".
MIN_YEAR = 2000
MAX_YEAR = 2099

# A DTD is the door to entity expansion (billion laughs) and external entities; no reader
# needs one, so any declaration is refused before the parser sees the bytes.
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(
    rb"""\A\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""", re.IGNORECASE
)
# Only ASCII-compatible encodings: in them "<!DOCTYPE" is the same bytes, so the check
# above sees it. (A UTF-7 or EBCDIC document could hide it from a byte search.)
_XML_ENCODINGS = frozenset(
    {
        "utf-8",
        "utf8",
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "iso8859-1",
        "latin-1",
        "latin1",
        "iso-8859-15",
        "iso8859-15",
        "windows-1252",
        "cp1252",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_body_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput.on("body", f"{len(body)} bytes, over the {MAX_BODY_BYTES} limit")
    if not body.strip():
        raise InvalidInput.on("body", "empty")


def parse_xml(data: bytes, field: str) -> ET.Element:
    """Parse XML from a device, refusing DTDs and encodings the DTD check cannot see."""
    if not data.strip():
        raise InvalidInput.on(field, "empty XML")
    # UTF-16/32 would hide "<!DOCTYPE" from a byte search; readers send UTF-8 or Latin-1.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        raise InvalidInput.on(field, "XML must be UTF-8 (or another ASCII-compatible encoding)")
    declared = _XML_DECL_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None:
        encoding = declared.group(1).decode("ascii", "replace").strip().lower()
        if encoding not in _XML_ENCODINGS:
            raise InvalidInput.on(
                field, f"XML encoding {encoding!r} is refused: send UTF-8 or ISO-8859-1"
            )
    if _DTD.search(data):
        raise InvalidInput.on(field, "XML with a DTD or entity declaration is refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        raise InvalidInput.on(
            field, f"malformed XML at line {line}, column {column}: {exc}"
        ) from None


def local(tag: object) -> str:
    """The element's name without its namespace: vendors move between namespaces.

    Comments and processing instructions have a function as tag: they get no name.
    """
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(parent: ET.Element, *names: str) -> ET.Element | None:
    """The first direct child called any of `names` (local name, any case)."""
    wanted = [name.casefold() for name in names]
    by_name: dict[str, ET.Element] = {}
    for element in parent:
        by_name.setdefault(local(element.tag).casefold(), element)
    for name in wanted:
        if name in by_name:
            return by_name[name]
    return None


def text(parent: ET.Element | None, *names: str) -> str | None:
    """The stripped text of the first child called any of `names`; None when absent.

    An element that is present but empty gives "" (a unit saying "nothing read").
    """
    if parent is None:
        return None
    element = child(parent, *names)
    if element is None:
        return None
    return (element.text or "").strip()


def percent(text: str, field: str) -> float:
    """A vendor's 0-100 score as the 0-1 `RawRead.confidence`."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput.on(field, f"not a number: {clip(text)!r}") from None
    if not 0 <= value <= 100:  # NaN fails this too
        raise InvalidInput.on(field, f"{clip(text)} is outside 0-100")
    return value / 100


def integer(text: str, field: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,9}", text.strip()):
        raise InvalidInput.on(field, f"not an integer: {clip(text)!r}")
    return int(text)


def lane(text: str | None, field: str) -> int | None:
    """A lane number; 0 (or nothing) means the unit does not say."""
    if not text:
        return None
    number = integer(text, field)
    if number < 0:
        raise InvalidInput.on(field, f"lane {number} is negative")
    return number or None


def decode_base64(encoded: str, field: str) -> bytes:
    """A picture sent as base64 text (line breaks allowed).

    Its size is not judged here: a picture over the ingest's limit costs the picture, not
    the read (the ingest flags it), as on the generic endpoint; the body limit bounds it.
    """
    compact = "".join(encoded.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput.on(field, "not valid base64") from None


def _check_year(value: datetime, field: str, text: str) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InvalidInput.on(
            field,
            f"{clip(text)!r} is not a plausible time (year outside {MIN_YEAR}-{MAX_YEAR}): "
            "is the unit's clock set?",
        )


def instant(text: str | None, field: str) -> tuple[datetime, bool]:
    """An ISO 8601 date-time in UTC, and whether the Italian zone had to be assumed.

    A time without an offset is read as Italian civil time (`LOCAL_ZONE`).
    """
    if text is None or not text:
        raise InvalidInput.on(field, "missing: the read has no time")
    candidate = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?\S*", candidate):
        raise InvalidInput.on(field, f"not an ISO 8601 date and time: {clip(text)!r}")
    # Python 3.11 reads at most microseconds; cameras send milliseconds at most.
    candidate = re.sub(r"([.,]\d{6})\d+", r"\1", candidate.replace("Z", "+00:00"))
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError:
        raise InvalidInput.on(field, f"not a valid date and time: {clip(text)!r}") from None
    _check_year(value, field, text)
    assumed = value.tzinfo is None
    if assumed:
        value = value.replace(tzinfo=LOCAL_ZONE)
    return value.astimezone(UTC), assumed


_DATE = re.compile(r"(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})")
_TIME = re.compile(r"(\d{2})[-:.](\d{2})[-:.](\d{2})(?:[-:.,](\d{1,6}))?")


def local_instant(date: str | None, time: str | None, date_field: str, time_field: str) -> datetime:
    """Separate local DATE and TIME fields (Italian civil time) as one UTC instant.

    DATE: YYYY-MM-DD (or YYYYMMDD, YYYY/MM/DD). TIME: HH-MM-SS or HH:MM:SS, optionally
    followed by a fraction of a second (milliseconds as -mmm or .mmm).
    """
    if not date:
        raise InvalidInput.on(date_field, "missing: the read has no date")
    if not time:
        raise InvalidInput.on(time_field, "missing: the read has no time of day")
    day = _DATE.fullmatch(date.strip())
    if day is None:
        raise InvalidInput.on(date_field, f"not a date (YYYY-MM-DD): {clip(date)!r}")
    clock = _TIME.fullmatch(time.strip())
    if clock is None:
        raise InvalidInput.on(time_field, f"not a time of day (HH-MM-SS): {clip(time)!r}")
    fraction = clock.group(4) or ""
    try:
        value = datetime(
            int(day.group(1)),
            int(day.group(2)),
            int(day.group(3)),
            int(clock.group(1)),
            int(clock.group(2)),
            int(clock.group(3)),
            int(fraction.ljust(6, "0")) if fraction else 0,
        )
    except ValueError as exc:
        raise InvalidInput.on(
            f"{date_field}/{time_field}", f"not a valid date and time ({date} {time}): {exc}"
        ) from None
    _check_year(value, date_field, date)
    return value.replace(tzinfo=LOCAL_ZONE).astimezone(UTC)


# Countries a municipal reader in Italy meets, as (alpha-2, alpha-3, English names).
# Vendors send alpha-2, alpha-3 or a name; numeric vendor indexes are not mapped.
_COUNTRIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("AD", "AND", ("Andorra",)),
    ("AE", "ARE", ("United Arab Emirates",)),
    ("AL", "ALB", ("Albania",)),
    ("AM", "ARM", ("Armenia",)),
    ("AR", "ARG", ("Argentina",)),
    ("AT", "AUT", ("Austria",)),
    ("AU", "AUS", ("Australia",)),
    ("AZ", "AZE", ("Azerbaijan",)),
    ("BA", "BIH", ("Bosnia and Herzegovina", "Bosnia")),
    ("BE", "BEL", ("Belgium",)),
    ("BG", "BGR", ("Bulgaria",)),
    ("BR", "BRA", ("Brazil",)),
    ("BY", "BLR", ("Belarus",)),
    ("CA", "CAN", ("Canada",)),
    ("CH", "CHE", ("Switzerland",)),
    ("CN", "CHN", ("China",)),
    ("CY", "CYP", ("Cyprus",)),
    ("CZ", "CZE", ("Czechia", "Czech Republic", "Czech")),
    ("DE", "DEU", ("Germany",)),
    ("DK", "DNK", ("Denmark",)),
    ("DZ", "DZA", ("Algeria",)),
    ("EE", "EST", ("Estonia",)),
    ("EG", "EGY", ("Egypt",)),
    ("ES", "ESP", ("Spain",)),
    ("FI", "FIN", ("Finland",)),
    ("FR", "FRA", ("France",)),
    ("GB", "GBR", ("United Kingdom", "Great Britain", "UK")),
    ("GE", "GEO", ("Georgia",)),
    ("GR", "GRC", ("Greece",)),
    ("HR", "HRV", ("Croatia",)),
    ("HU", "HUN", ("Hungary",)),
    ("IE", "IRL", ("Ireland",)),
    ("IL", "ISR", ("Israel",)),
    ("IN", "IND", ("India",)),
    ("IS", "ISL", ("Iceland",)),
    ("IT", "ITA", ("Italy", "Italia")),
    ("JP", "JPN", ("Japan",)),
    ("KZ", "KAZ", ("Kazakhstan",)),
    ("LI", "LIE", ("Liechtenstein",)),
    ("LT", "LTU", ("Lithuania",)),
    ("LU", "LUX", ("Luxembourg",)),
    ("LV", "LVA", ("Latvia",)),
    ("LY", "LBY", ("Libya",)),
    ("MA", "MAR", ("Morocco",)),
    ("MC", "MCO", ("Monaco",)),
    ("MD", "MDA", ("Moldova",)),
    ("ME", "MNE", ("Montenegro",)),
    ("MK", "MKD", ("North Macedonia", "Macedonia")),
    ("MT", "MLT", ("Malta",)),
    ("NL", "NLD", ("Netherlands", "The Netherlands", "Holland")),
    ("NO", "NOR", ("Norway",)),
    ("PL", "POL", ("Poland",)),
    ("PT", "PRT", ("Portugal",)),
    ("RO", "ROU", ("Romania",)),
    ("RS", "SRB", ("Serbia",)),
    ("RU", "RUS", ("Russia", "Russian Federation")),
    ("SA", "SAU", ("Saudi Arabia",)),
    ("SE", "SWE", ("Sweden",)),
    ("SI", "SVN", ("Slovenia",)),
    ("SK", "SVK", ("Slovakia",)),
    ("SM", "SMR", ("San Marino",)),
    ("TN", "TUN", ("Tunisia",)),
    ("TR", "TUR", ("Turkey", "Türkiye", "Turkiye")),
    ("UA", "UKR", ("Ukraine",)),
    ("US", "USA", ("United States", "United States of America", "USA")),
    ("VA", "VAT", ("Vatican", "Vatican City", "Holy See")),
)
_ALPHA3 = {alpha3: alpha2 for alpha2, alpha3, _ in _COUNTRIES}
_NAMES = {name.casefold(): alpha2 for alpha2, _, names in _COUNTRIES for name in names}
_ALPHA2_ALIASES = {"UK": "GB", "EL": "GR"}  # the EU's own codes for the UK and Greece


def country(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 from a vendor's country field, or None when it cannot say.

    Two letters pass through (upper-cased); three letters are read as alpha-3 from the
    table above; otherwise an English country name. Numbers (vendor indexes) and
    anything unknown give None: the raw value stays in `extra`.
    """
    if not value:
        return None
    candidate = value.strip()
    if re.fullmatch(r"[A-Za-z]{2}", candidate):
        upper = candidate.upper()
        return _ALPHA2_ALIASES.get(upper, upper)
    if re.fullmatch(r"[A-Za-z]{3}", candidate) and candidate.upper() in _ALPHA3:
        return _ALPHA3[candidate.upper()]
    return _NAMES.get(" ".join(candidate.split()).casefold())


# The vehicle's motion relative to the reader: towards it is "inbound", away "outbound".
# (Readers are installed facing the traffic they watch: a municipal gate's inbound
# reader sees entering vehicles approach.) Anything else is no direction.
DIRECTIONS: Mapping[str, str] = {
    "approaching": "inbound",
    "approach": "inbound",
    "towards": "inbound",
    "toward": "inbound",
    "incoming": "inbound",
    "inbound": "inbound",
    "in": "inbound",
    "leaving": "outbound",
    "leave": "outbound",
    "away": "outbound",
    "outgoing": "outbound",
    "outbound": "outbound",
    "out": "outbound",
}


def direction(value: str | None, vendor_words: Mapping[str, str] | None = None) -> str | None:
    if not value:
        return None
    word = value.strip().casefold()
    if vendor_words is not None and word in vendor_words:
        return vendor_words[word]
    return DIRECTIONS.get(word)


def clip(value: str, limit: int = MAX_EXTRA_CHARS) -> str:
    """A vendor string fit for an error message or `extra`: no control characters, short."""
    cleaned = _CONTROL.sub(" ", value).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def extras(pairs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """The vendor fields kept for the record: present, non-empty, clipped."""
    return {key: clip(value) for key, value in pairs if value}


def event_id(*parts: str) -> str:
    """Join the parts of a vendor's event identity; hash it when it would be too long."""
    joined = "/".join(clip(part, MAX_EVENT_ID) for part in parts)
    if len(joined) <= MAX_EVENT_ID:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()
