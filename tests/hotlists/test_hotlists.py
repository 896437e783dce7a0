"""Hotlists and their import, on SQLite and PostgreSQL: rows checked, written all or nothing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import CONSOLE
from vigila import hotlists, registry
from vigila.access import Principal, Purpose, Role
from vigila.access.tables import audit_log
from vigila.core import Conflict, Forbidden, InvalidInput, NotFound
from vigila.hotlists import (
    EntryIn,
    FileFormat,
    HotlistIn,
    HotlistKind,
    HotlistPatch,
    ImportMode,
    LookalikePolicy,
)
from vigila.hotlists.tables import hotlist_entries
from vigila.plates import lookalike_key
from vigila.store import Database

WHY = Purpose("verifica segnalazione furto", "RG 1234/2026")
CSV, TXT = FileFormat.CSV, FileFormat.TXT
REPLACE = ImportMode.REPLACE


def person(*roles: Role) -> Principal:
    return Principal(7, "someone", "pl-test", frozenset(roles), True)


SUPERVISOR = person(Role.SUPERVISOR)


@pytest.fixture
def lists(db: Database) -> Database:
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id="pl-test", name="Polizia Locale", kind=registry.AgencyKind.POLIZIA_LOCALE))
        for hid, policy in (("furti", LookalikePolicy.ONE_SUBSTITUTION),
                            ("locale", LookalikePolicy.EXACT)):
            hotlists.create_hotlist(conn, SUPERVISOR, HotlistIn(
                id=hid, name=hid.title(), kind=HotlistKind.STOLEN, agency_id="pl-test",
                priority=60, policy=policy))
    return db


def imp(db: Database, raw: str | bytes, fmt: FileFormat = CSV, hotlist_id: str = "furti",
        **kw: Any) -> hotlists.HotlistImportReport:
    data = raw.encode() if isinstance(raw, str) else raw
    with db.write() as conn:
        return hotlists.import_entries(conn, SUPERVISOR, hotlist_id, data, fmt=fmt, **kw)


def plates(db: Database, hotlist_id: str = "furti") -> dict[str, dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(hotlist_entries).where(
            hotlist_entries.c.hotlist_id == hotlist_id)).mappings()
        return {r["plate"]: dict(r) for r in rows}


def count(db: Database, hotlist_id: str = "furti") -> int:
    with db.read() as conn:
        return hotlists.get_hotlist(conn, SUPERVISOR, hotlist_id).entry_count


def test_create_update_and_audit(lists: Database) -> None:
    with lists.write() as conn:
        h = hotlists.update_hotlist(conn, SUPERVISOR, "locale", HotlistPatch(priority=90,
                                                                              active=False))
        assert (h.priority, h.active, h.revision) == (90, False, 2)
        with pytest.raises(Conflict):
            hotlists.create_hotlist(conn, SUPERVISOR, HotlistIn(
                id="furti", name="x", kind=HotlistKind.LOCAL, agency_id="pl-test"))
        with pytest.raises(InvalidInput, match="agency"):
            hotlists.create_hotlist(conn, SUPERVISOR, HotlistIn(
                id="altra", name="x", kind=HotlistKind.LOCAL, agency_id="nessuna"))
        with pytest.raises(InvalidInput, match="name"):
            hotlists.update_hotlist(conn, SUPERVISOR, "locale", HotlistPatch(name=None))
        with pytest.raises(NotFound):
            hotlists.get_hotlist(conn, SUPERVISOR, "nessuna")
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    assert actions.count("hotlist.create") == 2 and "hotlist.update" in actions
    with lists.read() as conn:
        assert [h.id for h in hotlists.list_hotlists(conn, person(Role.OPERATOR))] == [
            "furti", "locale"]


def test_permissions(lists: Database) -> None:
    operator, admin = person(Role.OPERATOR), person(Role.ADMINISTRATOR)
    with lists.write() as conn:
        for who in (operator, person(Role.INVESTIGATOR), person(Role.DPO)):
            with pytest.raises(Forbidden, match=r"hotlists\.manage"):
                hotlists.add_entry(conn, who, "furti", EntryIn(plate="AB123CD"))
            with pytest.raises(Forbidden):
                hotlists.import_entries(conn, who, "furti", b"AB123CD", fmt=TXT)
        hotlists.add_entry(conn, admin, "furti", EntryIn(plate="ab 123 cd"))
        # The administrator manages lists but reads no personal data.
        with pytest.raises(Forbidden, match=r"personal\.read"):
            hotlists.list_entries(conn, admin, WHY, "furti")
        with pytest.raises(Forbidden):
            hotlists.list_hotlists(conn, person(Role.JUDICIAL_VIEWER))
        page = hotlists.list_entries(conn, operator, WHY, "furti")
        assert [e.plate for e in page.items] == ["AB123CD"]
        entry = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "hotlist.entries.read")).mappings().one()
    assert (entry["purpose"], entry["reference"]) == (WHY.text, WHY.reference)
    assert entry["actor"] == "someone" and entry["detail"]["returned"] == 1


def test_add_remove_and_page(lists: Database) -> None:
    later = datetime.now(UTC) + timedelta(days=3)
    with lists.write() as conn:
        for p in ("CC333CC", "AA111AA", "BB222BB"):
            hotlists.add_entry(conn, SUPERVISOR, "furti", EntryIn(
                plate=p, priority=80, reason="furto", expires_at=later, country="it"))
        with pytest.raises(Conflict):
            hotlists.add_entry(conn, SUPERVISOR, "furti", EntryIn(plate="aa-111-aa"))
        with pytest.raises(InvalidInput, match="past"):
            hotlists.add_entry(conn, SUPERVISOR, "furti", EntryIn(
                plate="DD444DD", expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        first = hotlists.list_entries(conn, SUPERVISOR, WHY, "furti", limit=2)
        second = hotlists.list_entries(conn, SUPERVISOR, WHY, "furti", first.next_cursor)
        only = hotlists.list_entries(conn, SUPERVISOR, WHY, "furti", plate="bb 222 bb")
        hotlists.remove_entry(conn, SUPERVISOR, "furti", "bb-222-bb")
        with pytest.raises(NotFound):
            hotlists.remove_entry(conn, SUPERVISOR, "furti", "BB222BB")
    assert [e.plate for e in first.items] == ["AA111AA", "BB222BB"]
    assert [e.plate for e in second.items] == ["CC333CC"] and second.next_cursor is None
    assert [e.plate for e in only.items] == ["BB222BB"]
    item = first.items[0]
    assert (item.priority, item.reason, item.country, item.expires_at) == (80, "furto", "IT",
                                                                           later)
    assert set(plates(lists)) == {"AA111AA", "CC333CC"} and count(lists) == 2
    assert plates(lists)["AA111AA"]["lookalike_key"] == lookalike_key("AA111AA")


def test_import_csv_merge_then_replace(lists: Database) -> None:
    report = imp(lists, "\ufeffplate;priority;reason;expires_at;country\n"
                        "AB 123 CD;90;furto;2099-12-31;it\n"
                        "ef-456-gh;;;;\n"
                        "\n"
                        "LM789NP;10;rapina;2099-01-01T10:00:00+01:00;\n")
    assert report.committed and (report.rows, report.added, report.updated) == (3, 3, 0)
    got = plates(lists)
    assert got["AB123CD"]["priority"] == 90 and got["AB123CD"]["country"] == "IT"
    # A bare date lasts to the end of that day in Rome: 2100-01-01 00:00 +01:00.
    assert got["AB123CD"]["expires_at"] == datetime(2099, 12, 31, 23, 0, tzinfo=UTC)
    assert got["LM789NP"]["expires_at"] == datetime(2099, 1, 1, 9, 0, tzinfo=UTC)
    assert got["EF456GH"]["priority"] is None and got["EF456GH"]["reason"] is None

    merged = imp(lists, "plate,priority\nAB123CD,20\nZZ999ZZ,30\n")
    assert (merged.added, merged.updated, merged.removed) == (1, 1, 0)
    got = plates(lists)
    assert got["AB123CD"]["priority"] == 20 and len(got) == 4 and count(lists) == 4
    assert got["AB123CD"]["reason"] is None  # the row is the new truth for its plate

    replaced = imp(lists, "AB123CD\nXY000XY\n", TXT, mode=REPLACE)
    assert (replaced.added, replaced.updated, replaced.removed) == (1, 1, 3)
    assert set(plates(lists)) == {"AB123CD", "XY000XY"} and count(lists) == 2
    assert plates(lists, "locale") == {}
    with lists.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "hotlist.import").order_by(audit_log.c.seq)).mappings().all()
    assert [r["detail"]["mode"] for r in rows] == ["merge", "merge", "replace"]
    assert rows[-1]["detail"] | {"source": "-"} == {
        "source": "-", "format": "txt", "mode": "replace", "rows": 2, "added": 1,
        "updated": 1, "removed": 3, "rejected": 0}


def test_txt_numbers_lines_as_an_editor_does(lists: Database) -> None:
    with lists.write() as conn:
        report = hotlists.import_entries(conn, SUPERVISOR, "furti",
                                         b"# lista\r\nAB123CD\r\n\r\nAB#12\r\nab123cd\r\n",
                                         fmt=TXT)
    assert not report.committed and report.rows == 3 and report.rejected == 2
    assert [(e["row"], e["field"]) for e in report.errors] == [(4, "plate"), (5, "plate")]
    assert "first at row 2" in report.errors[1]["message"]
    assert plates(lists) == {}


def test_per_row_errors_all_or_nothing_then_good_rows(lists: Database) -> None:
    raw = ("plate,priority,expires_at,country,reason\n"
           "AB123CD,50,,IT,ok\n"           # 2: good
           "AB-12?-CD,50,,,\n"             # 3: bad plate
           "EF456GH,150,,,\n"              # 4: priority out of range
           "LM789NP,alto,,,\n"             # 5: not a number
           "PR012ST,,31/12/2026,,\n"       # 6: bad date
           "TV345ZA,,2026-01-01T10:00,,\n"  # 7: no offset
           "BC678DE,,2001-01-01,,\n"       # 8: past
           "FG901HJ,,,ITA,\n"              # 9: bad country
           "ab 123 cd,,,,\n"               # 10: duplicate of row 2
           "KL234MN,1\n"                   # 11: wrong number of cells
           "NP567RS,,,,\n")                # 12: good
    report = imp(lists, raw)
    assert not report.committed and report.imported == 0 and plates(lists) == {}
    where = [(e["row"], e["field"]) for e in report.errors]
    assert where == [(3, "plate"), (4, "priority"), (5, "priority"), (6, "expires_at"),
                     (7, "expires_at"), (8, "expires_at"), (9, "country"), (10, "plate"),
                     (11, "(row)")]
    assert report.rows == 11 and report.rejected == 9 and report.errors_total == 9
    assert "150 is not between 0 and 100" in report.errors[1]["message"]
    err = hotlists.rejected(report)
    assert err.status == 422 and "9 of 11 rows" in err.detail and err.errors[0].row == 3

    good = imp(lists, raw, good_rows=True)
    assert good.committed and good.added == 2 and good.rejected == 9
    assert set(plates(lists)) == {"AB123CD", "NP567RS"}


def test_file_level_refusals(lists: Database) -> None:
    latin1 = "plate,reason\nAB123CD,velocità\n".encode("latin-1")
    at = latin1.index("à".encode("latin-1"))
    with pytest.raises(InvalidInput, match=f"byte {at} is 0xe0") as exc:
        imp(lists, latin1)
    assert exc.value.errors[0].message == f"not UTF-8 at byte {at}"
    for raw, fmt, message in ((b"", CSV, "empty"), (b"", TXT, "no rows"),
                              (b"\n# nulla\n\n", TXT, "no rows"), (b"plate\n\n", CSV, "no rows"),
                              (b"targa,motivo\nAB123CD,x\n", CSV, "unknown columns"),
                              (b"priority\n10\n", CSV, "plate column"),
                              (b"plate,plate\nA,B\n", CSV, "twice")):
        with pytest.raises(InvalidInput, match=message):
            imp(lists, raw, fmt)
    # Every row bad, good_rows or not: nothing is written, so a replace cannot empty a list.
    imp(lists, "AB123CD\n", TXT)
    report = imp(lists, "??\n", TXT, mode=REPLACE, good_rows=True)
    assert not report.committed and set(plates(lists)) == {"AB123CD"}
    with pytest.raises(NotFound):
        imp(lists, "AB123CD\n", TXT, hotlist_id="nessuna")


def test_fifty_thousand_entries(lists: Database) -> None:
    rng = random.Random(5)
    letters = "ABCDEFGHJKLMNPRSTVWXYZ"
    chosen: set[str] = set()
    while len(chosen) < 50_000:
        chosen.add("".join(rng.choice(letters) for _ in range(2)) + f"{rng.randrange(1000):03d}"
                   + "".join(rng.choice(letters) for _ in range(2)))
    listed = sorted(chosen)
    raw = "plate,priority,reason\n" + "".join(f"{p},{i % 101},furto\n"
                                             for i, p in enumerate(listed))
    started = time.perf_counter()
    report = imp(lists, raw)
    took = time.perf_counter() - started
    assert report.committed and report.added == 50_000 and count(lists) == 50_000
    assert took < 15, f"{took:.1f} s"  # a million in under a minute, with room on a busy box
    # The next day: a thousand found, a thousand new.
    fresh = [f"UU{i:03d}UU" for i in range(1000)]  # the series skips U: none is listed
    again = imp(lists, "\n".join(listed[1000:] + fresh), TXT, mode=REPLACE)
    assert (again.added, again.updated, again.removed) == (1000, 49_000, 1000)
    got = plates(lists)
    assert len(got) == 50_000 == count(lists) and listed[0] not in got
    assert got[listed[1000]]["priority"] is None  # replaced by a TXT row: the list's
