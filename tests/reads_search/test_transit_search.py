"""Search, route and convoy as services: results, scope, limits, audit (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from search_city import (
    PURPOSE_REF,
    PURPOSE_TEXT,
    SINCE,
    T0,
    UNTIL,
    audit_entries,
    insert,
    investigator,
    populate,
    transit,
)

from conftest import seed
from vigila.access import Principal, Purpose, Role
from vigila.core import Settings
from vigila.core.errors import Forbidden, InvalidInput, NotFound
from vigila.core.pagination import encode_cursor
from vigila.reads import search
from vigila.reads.models import ReadDirection
from vigila.reads.search_models import FoundTransit, TransitQuery
from vigila.store import Database

WHY = Purpose(PURPOSE_TEXT, PURPOSE_REF)
ALL = investigator()
ZONE_A = investigator(["zona-a"])
Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture
def city(db: Database, settings: Settings) -> Rows:
    seed(db, settings)
    return populate(db)


def find(db: Database, who: Principal = ALL, **query: Any) -> list[FoundTransit]:
    query.setdefault("since", SINCE)
    query.setdefault("until", UNTIL)
    with db.write() as conn:
        return search.search_transits(conn, who, WHY, TransitQuery(**query)).items


def plates(items: list[FoundTransit]) -> list[str]:
    return [i.plate for i in items]


def refused(db: Database, field: str, **query: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        find(db, **query)
    assert err.value.errors[0].field == field, err.value.detail


def test_exact_newest_first_in_scope(db: Database, city: Rows) -> None:
    found = find(db, plate="ab-123 cd")
    assert [i.device_id for i in found] == ["LPR-B1", "LPR-A3", "LPR-A2", "LPR-A1"]
    assert [i.time for i in found] == sorted((i.time for i in found), reverse=True)
    first = found[-1]
    assert first.id == city["AB123CD"][0]["id"] and first.device_name == "Dispositivo LPR-A1"
    assert first.zone_id == "zona-a" and first.direction is ReadDirection.INBOUND
    assert first.flags == ["low_confidence", "hotlist"] and first.hit and first.distance is None
    # Restricted to zona-a: the passage at LPR-B1 (zona-b) is not there.
    assert [i.device_id for i in find(db, ZONE_A, plate="AB123CD")] == [
        "LPR-A3", "LPR-A2", "LPR-A1"]
    assert find(db, investigator([]), plate="AB123CD") == []
    # CAM-X has no zone: only users with every zone see what it read.
    assert plates(find(db, plate="ZZ999ZZ")) == ["ZZ999ZZ"]
    assert find(db, ZONE_A, plate="ZZ999ZZ") == []


def test_time_range_is_half_open(db: Database, city: Rows) -> None:
    assert len(find(db, plate="AB123CD", since=T0, until=T0 + timedelta(minutes=10))) == 2
    assert len(find(db, plate="AB123CD", since=T0 + timedelta(minutes=5),
                    until=T0 + timedelta(minutes=10, microseconds=1))) == 2


def test_default_range_is_the_last_day(db: Database, city: Rows) -> None:
    now = datetime.now(UTC)
    insert(db, [transit("FF444FF", "LPR-A1", now - timedelta(hours=1)),
                transit("FF444FF", "LPR-A2", now - timedelta(hours=30))])
    with db.write() as conn:
        page = search.search_transits(conn, ALL, WHY, TransitQuery(plate="FF444FF"))
    assert [i.device_id for i in page.items] == ["LPR-A1"]
    older = find(db, plate="FF444FF", since=now - timedelta(days=2), until=None)
    assert [i.device_id for i in older] == ["LPR-A1", "LPR-A2"]


def test_wildcards(db: Database, city: Rows) -> None:
    assert set(plates(find(db, pattern="ab1?3*"))) == {"AB123CD"}
    assert set(plates(find(db, pattern="AB*"))) == {"AB123CD", "AB456EF"}
    assert set(plates(find(db, pattern="*CD"))) == {"AB123CD", "A8123CD", "48I23CD", "XB123CD"}
    assert set(plates(find(db, pattern="?B123CD"))) == {"AB123CD", "XB123CD"}
    assert set(plates(find(db, pattern="ZZ999Z?"))) == {"ZZ999ZZ"}
    assert set(plates(find(db, pattern="AB123CD"))) == {"AB123CD"}  # no wildcard: exact
    assert find(db, pattern="Z*9") == []
    # A prefix ending in Z or 9 has an upper bound that carries over.
    insert(db, [transit("AZ999ZZ", "LPR-A1", T0), transit("B0000AA", "LPR-A1", T0),
                transit("A9ZZ000", "LPR-A1", T0), transit("AA00000", "LPR-A1", T0),
                transit("AB712XY", "LPR-A1", T0)])
    assert set(plates(find(db, pattern="AB?12*"))) == {"AB712XY"}
    assert set(plates(find(db, pattern="AZ*"))) == {"AZ999ZZ"}
    assert set(plates(find(db, pattern="A9*"))) == {"A9ZZ000"}
    assert search.prefix_upper("AZ") == "B" and search.prefix_upper("A9") == "AA"
    assert search.prefix_upper("ZZ") is None and search.literal_prefix("AB?1*") == "AB"


def test_a_pattern_without_a_prefix_is_bounded_in_time(db: Database, city: Rows) -> None:
    refused(db, "since", pattern="*CD", since=T0 - timedelta(days=8), until=T0)
    assert plates(find(db, pattern="*CD", since=T0 - timedelta(days=6), until=UNTIL))
    # A literal prefix is served by the plate index: any range.
    assert plates(find(db, pattern="AB*", since=T0 - timedelta(days=365), until=UNTIL))


def test_lookalikes(db: Database, city: Rows) -> None:
    found = find(db, plate="AB123CD", fuzzy=True)
    assert [(i.plate, i.distance) for i in found] == [("A8123CD", 1)] + [("AB123CD", 0)] * 4
    found = find(db, plate="A8123CD", fuzzy=True, limit=2)
    assert [(i.plate, i.distance) for i in found] == [("A8123CD", 0), ("AB123CD", 1)]
    assert find(db, ZONE_A, plate="48I23CD", fuzzy=True)[0].distance == 0


def test_lookalike_pages_skip_the_far_ones(db: Database, city: Rows) -> None:
    # Many far look-alikes (same key, 3 substitutions) newer than the near ones.
    insert(db, [transit("48I23CD", "LPR-A1", T0 + timedelta(hours=2, seconds=i))
                for i in range(30)])
    seen: list[FoundTransit] = []
    cursor = None
    for _ in range(20):
        with db.write() as conn:
            page = search.search_transits(conn, ALL, WHY, TransitQuery(
                plate="AB123CD", fuzzy=True, since=SINCE, until=UNTIL, limit=1, cursor=cursor))
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [i.plate for i in seen] == ["A8123CD"] + ["AB123CD"] * 4


def test_filters(db: Database, city: Rows) -> None:
    assert [i.device_id for i in find(db, plate="AB123CD", devices=("LPR-A1", "LPR-A3"))] == [
        "LPR-A3", "LPR-A1"]
    assert [i.device_id for i in find(db, plate="AB123CD", zones=("zona-b",))] == ["LPR-B1"]
    assert [i.device_id for i in find(db, pattern="AB*", direction="outbound")] == ["LPR-A2"]
    # A reader or zone outside the user's scope yields nothing; an unknown one too.
    assert find(db, ZONE_A, plate="AB123CD", devices=("LPR-B1",)) == []
    assert find(db, ZONE_A, plate="AB123CD", zones=("zona-b",)) == []
    assert find(db, plate="AB123CD", devices=("NESSUNO",)) == []


def test_pages(db: Database, city: Rows) -> None:
    seen: list[FoundTransit] = []
    cursor = None
    while True:
        with db.write() as conn:
            page = search.search_transits(conn, ALL, WHY, TransitQuery(
                pattern="?????C?", since=SINCE, until=UNTIL, limit=3, cursor=cursor))
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    every = find(db, pattern="?????C?", limit=1000)
    assert [i.id for i in seen] == [i.id for i in every] and len(every) == 10
    # Same-time transits are ordered by id too: nothing is skipped or repeated.
    insert(db, [transit("SAME000", "LPR-A1", T0) for _ in range(5)])
    ids = []
    cursor = None
    while True:
        with db.write() as conn:
            page = search.search_transits(conn, ALL, WHY, TransitQuery(
                plate="SAME000", since=SINCE, until=UNTIL, limit=2, cursor=cursor))
        ids += [i.id for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(ids) == len(set(ids)) == 5
    for bad in ("nonsense", encode_cursor(42), encode_cursor("2026-01-01T00:00:00Z~zz"),
                encode_cursor("2026-01-01T00:00:00~" + "0" * 32)):
        refused(db, "cursor", plate="AB123CD", cursor=bad)


def test_bad_queries(db: Database, city: Rows) -> None:
    refused(db, "plate")  # neither
    refused(db, "plate", plate="AB123CD", pattern="AB*")  # both
    refused(db, "fuzzy", pattern="AB*", fuzzy=True)
    refused(db, "plate", plate="AB#123")
    refused(db, "plate", plate="  - ")
    refused(db, "plate", plate="A" * 40)
    refused(db, "pattern", pattern="**?")
    refused(db, "pattern", pattern="AB%")
    refused(db, "since", plate="AB123CD", since=T0, until=T0)
    refused(db, "since", plate="AB123CD", since=T0, until=T0 - timedelta(seconds=1))
    # A day before the first instant there is: no range left.
    refused(db, "since", plate="AB123CD", until=datetime(1, 1, 1, tzinfo=UTC), since=None)
    with db.write() as conn, pytest.raises(Forbidden):
        search.search_transits(conn, Principal(None, "op", "pl-test", frozenset({Role.OPERATOR}),
                                               True), WHY, TransitQuery(plate="AB123CD"))


def test_get_one(db: Database, city: Rows) -> None:
    at_b1 = city["AB123CD"][3]["id"]
    with db.write() as conn:
        assert search.get_transit(conn, ALL, WHY, at_b1).device_id == "LPR-B1"
    with db.write() as conn, pytest.raises(NotFound):
        search.get_transit(conn, ZONE_A, WHY, at_b1)
    entry = audit_entries(db, "transits.read")[-1]
    assert entry["resource"] == f"transit/{at_b1}" and entry["detail"]["plate"] == "AB123CD"
    assert len(audit_entries(db, "transits.read")) == 1  # the refused read wrote nothing


def test_route(db: Database, city: Rows) -> None:
    with db.write() as conn:
        route = search.plate_route(conn, ALL, WHY, "ab 123 cd", SINCE, UNTIL).model_dump(
            mode="json")
    assert route["type"] == "FeatureCollection" and route["plate"] == "AB123CD"
    points, line = route["features"][:-1], route["features"][-1]
    assert [p["properties"]["device_id"] for p in points] == [
        "LPR-A1", "LPR-A2", "LPR-A3", "LPR-B1"]
    assert [p["properties"]["seq"] for p in points] == [1, 2, 3, 4]
    assert points[0]["geometry"] == {"type": "Point", "coordinates": [11.091, 43.871]}
    assert points[0]["id"] == str(city["AB123CD"][0]["id"])
    assert points[0]["properties"]["direction"] == "inbound"
    assert points[0]["properties"]["time"] == "2026-03-02T08:00:00Z"
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"] == [p["geometry"]["coordinates"] for p in points]
    assert line["properties"]["transits"] == 4 and line["properties"]["kind"] == "route"
    with db.write() as conn:
        scoped = search.plate_route(conn, ZONE_A, WHY, "AB123CD", SINCE, UNTIL)
        single = search.plate_route(conn, ALL, WHY, "XB123CD", SINCE, UNTIL)
        none = search.plate_route(conn, ALL, WHY, "NN000NN", SINCE, UNTIL)
    assert len(scoped.features) == 4  # three points and the line, all in zona-a
    assert [f.geometry.type for f in single.features] == ["Point"]  # no one-point line
    assert none.features == []
    entry = audit_entries(db, "plates.route")[0]
    assert entry["resource"] == "plate/AB123CD" and entry["purpose"] == PURPOSE_TEXT
    assert entry["reference"] == PURPOSE_REF and entry["detail"]["transits"] == 4


def test_route_too_long_is_refused(db: Database, city: Rows, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    monkeypatch.setattr(search, "MAX_ROUTE_TRANSITS", 3)
    with db.write() as conn, pytest.raises(InvalidInput) as err:
        search.plate_route(conn, ALL, WHY, "AB123CD", SINCE, UNTIL)
    assert err.value.errors[0].field == "since"


def test_convoy(db: Database, city: Rows) -> None:
    with db.write() as conn:
        three = search.convoy(conn, ALL, WHY, "AB123CD", since=SINCE, until=UNTIL,
                              window_seconds=60, min_readers=3)
        two = search.convoy(conn, ALL, WHY, "AB123CD", since=SINCE, until=UNTIL,
                            window_seconds=60, min_readers=2)
    assert three.target_transits == 4 and three.target_readers == 4
    assert [(c.plate, c.readers) for c in three.companions] == [("CC111CC", 3)]
    cc = three.companions[0]
    assert [s.device_id for s in cc.sightings] == ["LPR-A1", "LPR-A2", "LPR-A3"]
    assert [s.offset_seconds for s in cc.sightings] == [30, -20, 40]
    assert cc.sightings[0].target_transit_id == city["AB123CD"][0]["id"]
    assert [(c.plate, c.readers) for c in two.companions] == [("CC111CC", 3), ("EE333EE", 2)]
    assert "DD222DD" not in {c.plate for c in two.companions}  # with it at one reader only
    with db.write() as conn:
        narrow = search.convoy(conn, ALL, WHY, "AB123CD", since=SINCE, until=UNTIL,
                               window_seconds=25, min_readers=2)
        scoped = search.convoy(conn, investigator(["zona-b"]), WHY, "AB123CD", since=SINCE,
                               until=UNTIL, min_readers=2)
    assert [c.plate for c in narrow.companions] == ["EE333EE"]  # CC111CC was 30 s behind
    assert scoped.target_transits == 1 and scoped.companions == []
    entry = audit_entries(db, "plates.convoy")[1]
    assert entry["purpose"] == PURPOSE_TEXT and entry["detail"]["plates"] == [
        "CC111CC", "EE333EE"]
    assert entry["detail"]["window_seconds"] == 60 and entry["detail"]["min_readers"] == 2


def test_convoy_limits(db: Database, city: Rows, monkeypatch: pytest.MonkeyPatch) -> None:
    for field, kwargs in (("window_seconds", {"window_seconds": 0}),
                          ("window_seconds", {"window_seconds": 3601}),
                          ("min_readers", {"min_readers": 1}),
                          ("plate", {"plate": "?"}),
                          ("since", {"since": UNTIL})):
        args: dict[str, Any] = {"plate": "AB123CD", "since": SINCE, "until": UNTIL, **kwargs}
        with db.write() as conn, pytest.raises(InvalidInput) as err:
            search.convoy(conn, ALL, WHY, args.pop("plate"), **args)
        assert err.value.errors[0].field == field
    monkeypatch.setattr(search, "MAX_CONVOY_TARGETS", 3)
    with db.write() as conn, pytest.raises(InvalidInput) as err:
        search.convoy(conn, ALL, WHY, "AB123CD", since=SINCE, until=UNTIL)
    assert "more than 3 transits" in err.value.detail


def test_search_is_audited(db: Database, city: Rows) -> None:
    find(db, pattern="ab1?3*", zones=("zona-a",), direction="inbound")
    find(db, plate="AB123CD", fuzzy=True)
    first, second = audit_entries(db, "transits.search")
    assert first["purpose"] == PURPOSE_TEXT and first["reference"] == PURPOSE_REF
    assert first["actor"] == "inv-test" and first["resource"] == "transits"
    assert first["detail"]["pattern"] == "AB1?3*" and first["detail"]["zones"] == ["zona-a"]
    assert first["detail"]["direction"] == "inbound" and first["detail"]["returned"] == 2
    assert first["detail"]["plates"] == ["AB123CD"]
    assert first["detail"]["since"] == "2026-03-02T07:00:00Z"
    assert second["detail"]["plates"] == ["A8123CD", "AB123CD"]
