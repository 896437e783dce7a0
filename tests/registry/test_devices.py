"""Devices, zones and agencies over the API: the happy path and every kind of bad input."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlalchemy as sa

from conftest import SQUARE_A, World, device


def _count(world: World, table: str) -> int:
    with world.db.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body["field"] == field, body
    return body


def test_create_read_update_retire(world: World) -> None:
    h = world.headers("admin")
    body = device("CAM-NEW", "zona-a", heading=90, codec="h264", width=1920, height=1080,
                  fps=25, bitrate_kbps=4096, recording_server_id="NVR-A",
                  installed_on="2026-05-04", main_stream_url="rtsp://127.0.0.1:8554/new")
    r = world.client.post("/api/devices", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    r = world.client.patch("/api/devices/CAM-NEW", json={"heading": 180.5, "notes": None},
                           headers=h)
    assert r.status_code == 200 and r.json()["heading"] == 180.5
    r = world.client.post("/api/devices/CAM-NEW/retire", json={"reason": "spostata"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "retired"
    listed = world.client.get("/api/devices", headers=h).json()["items"]
    assert "CAM-NEW" not in {d["id"] for d in listed}
    listed = world.client.get("/api/devices?include_retired=true", headers=h).json()["items"]
    assert "CAM-NEW" in {d["id"] for d in listed}
    _problem(world.client.patch("/api/devices/CAM-NEW", json={"name": "x"}, headers=h), 409)


def test_stream_password_is_masked_for_everyone_but_administrators(world: World) -> None:
    url = lambda who: world.client.get(  # noqa: E731
        "/api/devices/CAM-A1", headers=world.headers(who)).json()["main_stream_url"]
    assert url("admin") == "rtsp://user:secret@127.0.0.1:8554/a1"
    assert url("operator") == "rtsp://user:***@127.0.0.1:8554/a1"


def test_filters_and_cursor_pagination(world: World) -> None:
    h = world.headers("admin")
    seen: list[str] = []
    url = "/api/devices?limit=2"
    while url:
        page = world.client.get(url, headers=h).json()
        assert len(page["items"]) <= 2
        seen += [d["id"] for d in page["items"]]
        url = f"/api/devices?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 7
    r = world.client.get("/api/devices?kind=plate_reader", headers=h).json()["items"]
    assert [d["id"] for d in r] == ["LPR-B1"]
    r = world.client.get("/api/devices?recording_server_id=NVR-A", headers=h).json()["items"]
    assert [d["id"] for d in r] == ["CAM-A1", "CAM-A2"]
    _problem(world.client.get("/api/devices?cursor=garbage!", headers=h), 422, "cursor")
    _problem(world.client.get("/api/devices?limit=0", headers=h), 422, "query.limit")


def test_bad_input_is_refused_and_changes_nothing(world: World) -> None:
    h = world.headers("admin")
    before = _count(world, "devices"), _count(world, "zones")
    def post(path: str, **kw: Any) -> Any:
        return world.client.post(path, **{"headers": h, **kw})

    _problem(post("/api/devices", content=b'{"id": "CAM-9", "kind": ',
                  headers={**h, "content-type": "application/json"}), 400)
    _problem(post("/api/devices", json={**device("CAM-9", "zona-a"), "lat": "nord"}), 422,
             "body.lat")
    _problem(post("/api/devices", json={**device("CAM-9", "zona-a"), "colour": "red"}), 422,
             "body.colour")
    _problem(post("/api/devices", json={**device("CAM-9", "zona-a"), "lat": 91}), 422, "body.lat")
    _problem(post("/api/devices", json={**device("CAM-9", "zona-a"), "lon": -181}), 422,
             "body.lon")
    _problem(post("/api/devices", json=device("CAM-A1", "zona-a")), 409, "id")
    _problem(post("/api/devices", json=device("../../etc", "zona-a")), 422, "body.id")
    _problem(post("/api/devices", json=device("CAM-9", "zona-z")), 422, "zone_id")
    _problem(post("/api/devices", json=device("CAM-9", "zona-a", recording_server_id="CAM-A2")),
             422, "recording_server_id")
    _problem(post("/api/devices", json=device("CAM-9", "zona-a", anpr_vendor="tattile")), 422,
             "anpr_vendor")
    _problem(post("/api/devices", json=device("CAM-9", "zona-a",
                                              main_stream_url="file:///etc/passwd")),
             422, "body.main_stream_url")
    point = {"type": "Point", "coordinates": [11.1, 43.88]}
    _problem(post("/api/zones", json={"id": "z-1", "name": "Z", "kind": "centre",
                                      "geometry": point}), 422, "geometry.type")
    bow = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    body = _problem(post("/api/zones", json={"id": "z-1", "name": "Z", "kind": "centre",
                                             "geometry": bow}), 422, "geometry")
    assert "Self-intersection" in body["detail"]
    open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
    _problem(post("/api/zones", json={"id": "z-1", "name": "Z", "kind": "centre",
                                      "geometry": open_ring}), 422, "geometry.coordinates[0]")
    far = {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}
    _problem(post("/api/zones", json={"id": "z-1", "name": "Z", "kind": "centre",
                                      "geometry": far}), 422, "geometry.coordinates[0][1]")
    huge = b'{"id": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    _problem(post("/api/devices", content=huge,
                  headers={**h, "content-type": "application/json"}), 413, "body")
    assert (_count(world, "devices"), _count(world, "zones")) == before


def test_zone_lifecycle(world: World) -> None:
    h = world.headers("admin")
    r = world.client.post("/api/zones", headers=h, json={
        "id": "scuola-nuova", "name": "Scuola nuova", "kind": "school", "geometry": SQUARE_A})
    assert r.status_code == 201, r.text
    r = world.client.patch("/api/zones/scuola-nuova", headers=h, json={"name": "Scuola Dante"})
    assert r.json()["name"] == "Scuola Dante"
    _problem(world.client.delete("/api/zones/zona-a", headers=h), 409)  # devices use it
    assert world.client.delete("/api/zones/scuola-nuova", headers=h).status_code == 204
    fc = world.client.get("/api/zones.geojson", headers=h).json()
    assert fc["type"] == "FeatureCollection"
    assert {f["id"] for f in fc["features"]} == {"zona-a", "zona-b"}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    cols = sorted({k for r in rows for k in r})
    writer = csv.DictWriter(out, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _import(world: World, body: bytes, ctype: str = "text/csv", query: str = "") -> Any:
    return world.client.post(f"/api/device-imports{query}", content=body,
                             headers={**world.headers("admin"), "content-type": ctype})


def test_csv_import_is_all_or_nothing_and_names_row_and_field(world: World) -> None:
    rows = [device("CAM-I1", "zona-a"), {**device("CAM-I2", "zona-a"), "lat": "100"},
            device("CAM-I3", "zona-b", fps="25"), device("CAM-I4", "zona-nessuna")]
    body = _problem(_import(world, _csv(rows)), 422)
    where = {(e["row"], e["field"]) for e in body["errors"]}
    assert where == {(3, "lat"), (5, "zone_id")}  # the header is row 1
    assert "nothing was imported" in body["detail"]
    assert _count(world, "devices") == 7
    r = _import(world, _csv(rows), query="?good_rows=true")
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["rejected"]) == (2, 2)
    ids = {d["id"] for d in world.client.get(
        "/api/devices?limit=100", headers=world.headers("admin")).json()["items"]}
    assert {"CAM-I1", "CAM-I3"} <= ids and not {"CAM-I2", "CAM-I4"} & ids


def test_import_refuses_duplicates_in_file_and_store(world: World) -> None:
    rows = [device("CAM-D1", "zona-a"), device("CAM-D1", "zona-a"), device("CAM-A1", "zona-a")]
    body = _problem(_import(world, _csv(rows)), 422)
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(3, "id"), (4, "id")}


def test_import_bad_files(world: World) -> None:
    latin1 = "id,kind,name,lat,lon,agency_id\nCAM-É,camera,Città,43.8,11.1,pl-test\n"
    _problem(_import(world, latin1.encode("latin-1")), 422, "file")
    _problem(_import(world, b"id,kind,colore\nX,camera,rosso\n"), 422, "colore")
    _problem(_import(world, b""), 422, "file")
    _problem(_import(world, b"id,kind\n"), 422, "file")
    _problem(_import(world, b"<xml/>", ctype="application/xml"), 415, "content-type")
    _problem(_import(world, b"{nope", ctype="application/geo+json"), 422, "file")
    _problem(_import(world, b'{"type": "Feature"}', ctype="application/geo+json"), 422, "type")
    ragged = b"id,kind,name,lat,lon,agency_id\nCAM-R,camera,R,43.8\n"
    assert _problem(_import(world, ragged), 422)["errors"][0]["row"] == 2
    assert _count(world, "devices") == 7


def test_export_round_trips_through_import(world: World) -> None:
    h = world.headers("admin")
    exported = world.client.get("/api/devices.csv", headers=h)
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.text.replace("CAM-", "COPY-").replace("NVR-", "NVRC-").replace("LPR-", "LPRC-")
    r = _import(world, text.encode())
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 7
    copy = world.client.get("/api/devices/COPY-A1", headers=h).json()
    orig = world.client.get("/api/devices/CAM-A1", headers=h).json()
    for key in ("kind", "lat", "lon", "zone_id", "main_stream_url", "agency_id"):
        assert copy[key] == orig[key]
    assert copy["recording_server_id"] == "NVRC-A"


def test_geojson_export_and_import(world: World) -> None:
    h = world.headers("admin")
    fc = world.client.get("/api/devices.geojson?kind=camera", headers=h).json()
    assert {f["geometry"]["type"] for f in fc["features"]} == {"Point"}
    for f in fc["features"]:  # imported back as written, timestamps and all
        f["properties"]["id"] = "G" + f["properties"]["id"]
    fc["features"].append({"type": "Feature", "geometry": {"type": "LineString",
                                                           "coordinates": [[0, 0], [1, 1]]},
                           "properties": {"id": "LINE"}})
    body = _problem(_import(world, json.dumps(fc).encode(), "application/geo+json"), 422,
                    "geometry")
    assert body["errors"][0]["row"] == len(fc["features"])
    r = _import(world, json.dumps(fc).encode(), "application/geo+json", "?good_rows=true")
    assert r.json()["imported"] == len(fc["features"]) - 1


def test_import_report_is_in_row_order(world: World) -> None:
    rows = [device("CAM-O1", "zona-z"), {**device("CAM-O2", "zona-a"), "lat": "x"},
            device("CAM-O3", "zona-a", lane="0")]
    body = _problem(_import(world, _csv(rows)), 422)
    assert [e["row"] for e in body["errors"]] == [2, 3, 4]
    assert "first: row 2" in body["detail"]


def test_a_recording_server_gets_no_stream(world: World) -> None:
    r = world.client.patch("/api/devices/NVR-A", json={"sub_stream_url": "rtsp://h/x"},
                           headers=world.headers("admin"))
    _problem(r, 422, "sub_stream_url")


def test_text_filter_takes_wildcards_literally(world: World) -> None:
    h = world.headers("admin")
    assert world.client.get("/api/devices?q=CAM-A_", headers=h).json()["items"] == []
    assert world.client.get("/api/devices?q=%25", headers=h).json()["items"] == []
    found = world.client.get("/api/devices?q=cam-a", headers=h).json()["items"]
    assert [d["id"] for d in found] == ["CAM-A1", "CAM-A2"]


def test_recording_server_with_cameras_cannot_be_retired(world: World) -> None:
    h = world.headers("admin")
    _problem(world.client.post("/api/devices/NVR-A/retire", headers=h), 409)
    for cam in ("CAM-A1", "CAM-A2"):
        r = world.client.patch(f"/api/devices/{cam}", json={"recording_server_id": None},
                               headers=h)
        assert r.status_code == 200
    assert world.client.post("/api/devices/NVR-A/retire", headers=h).status_code == 200
