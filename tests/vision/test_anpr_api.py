"""POST /api/anpr/read: a photo in, its plates out; a consultation with a purpose, audited."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa
from PIL import Image

from conftest import PURPOSE, World
from vigila.access.tables import audit_log

PHOTO = Path(__file__).parent / "data" / "us-car14.jpg"


def _post(world: World, data: bytes, who: str = "investigator", purpose: bool = True,
          name: str = "image") -> object:
    headers = world.headers(who, **PURPOSE) if purpose else world.headers(who)
    return world.client.post("/api/anpr/read", headers=headers,
                             files={name: ("photo.jpg", data, "image/jpeg")})


def test_reads_an_uploaded_photo_and_audits_it(world: World) -> None:
    data = PHOTO.read_bytes()
    r = _post(world, data)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    with Image.open(PHOTO) as img:
        assert (body["width"], body["height"]) == img.size
    texts = [p["text"] for p in body["plates"]]
    # In Italy a US plate is read with Italian-first priors: the text is still there.
    assert "980YTB" in texts, body
    with world.db.read() as conn:
        entry = conn.execute(sa.select(audit_log).where(audit_log.c.action == "anpr.read")
                             ).mappings().one()
    assert entry["actor"] == "investigator"
    assert entry["resource"] == f"image/{hashlib.sha256(data).hexdigest()}"
    assert "980YTB" in json.dumps(entry["detail"])
    assert entry["purpose"] == PURPOSE["text"]


def test_refusals(world: World) -> None:
    data = PHOTO.read_bytes()
    assert _post(world, data, purpose=False).status_code == 428  # type: ignore[attr-defined]
    assert _post(world, data, who="reader").status_code == 403  # type: ignore[attr-defined]
    assert _post(world, data, who="dpo").status_code == 403  # type: ignore[attr-defined]
    bad = _post(world, b"not a photo")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert bad.json()["errors"][0]["field"] == "image"  # type: ignore[attr-defined]
    missing = _post(world, data, name="photo")
    assert missing.status_code == 422  # type: ignore[attr-defined]
    as_json = world.client.post("/api/anpr/read", json={"image": "x"},
                                headers=world.headers("investigator", **PURPOSE))
    assert as_json.status_code == 415
    with world.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == "anpr.read")).scalar() == 0
