"""Reading an uploaded photo for a user: the engine's answer, consulted with a purpose.

A photo of a street is personal data and the plates read from it doubly so: the read is
a consultation, written to the audit trail with who, why, the photo's SHA-256 and the
plates revealed (D.Lgs. 51/2018 art. 21). Nothing of the photo is kept.
"""

from __future__ import annotations

import hashlib
from functools import cache

from vigila.access import Principal, Purpose, audit
from vigila.store import Database
from vigila.vision.anpr.engine import AnprEngine, ImageReading, decode_image


@cache
def shared_engine() -> AnprEngine:
    """One engine per process: the models are loaded once and used by every request."""
    return AnprEngine()


def read_photo(db: Database, engine: AnprEngine, who: Principal, why: Purpose,
               data: bytes, client: str | None = None) -> ImageReading:
    """Plates in the photo `data`, audited; a bad photo is refused before any audit."""
    image = decode_image(data)
    reading = engine.read(image)
    with db.write() as conn:
        audit.record(conn, who, "anpr.read", f"image/{hashlib.sha256(data).hexdigest()}",
                     purpose=why, client=client,
                     detail={"bytes": len(data), "plates": [p.text for p in reading.plates]})
    return reading
