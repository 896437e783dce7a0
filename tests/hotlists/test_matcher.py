"""The matcher: exact and look-alike hits per list policy, expiry, priority, refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from conftest import CONSOLE
from vigila import hotlists, registry
from vigila.access import Purpose
from vigila.core import InvalidInput
from vigila.hotlists import (
    EntryIn,
    FileFormat,
    HotlistIn,
    HotlistKind,
    HotlistMatcher,
    HotlistPatch,
    LookalikePolicy,
)
from vigila.store import Database

WHY = Purpose("allarme varco nord", "NR 55/2026")


@pytest.fixture
def db_lists(db: Database) -> Database:
    """furti: one-substitution, priority 90; assicurazione: exact, priority 40."""
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id="ps", name="Polizia di Stato", kind=registry.AgencyKind.POLIZIA_DI_STATO))
        for hid, kind, policy, priority in (
                ("furti", HotlistKind.STOLEN, LookalikePolicy.ONE_SUBSTITUTION, 90),
                ("assicurazione", HotlistKind.UNINSURED, LookalikePolicy.EXACT, 40)):
            hotlists.create_hotlist(conn, CONSOLE, HotlistIn(
                id=hid, name=hid.title(), kind=kind, agency_id="ps", priority=priority,
                policy=policy))
            hotlists.add_entry(conn, CONSOLE, hid, EntryIn(plate="AB123CD", reason=hid))
    return db


def test_exact_and_lookalike_by_policy(db_lists: Database) -> None:
    matcher = HotlistMatcher(db_lists)
    assert sorted(matcher.refresh()) == ["assicurazione", "furti"] and matcher.entries == 2
    exact = matcher.match("ab 123 cd")
    assert [(h.hotlist_id, h.distance, h.priority) for h in exact] == [
        ("furti", 0, 90), ("assicurazione", 0, 40)]
    assert exact[0].kind is HotlistKind.STOLEN and exact[0].reason == "furti"
    # One look-alike away: only the list whose policy allows it.
    for read in ("AB123C0", "A8123CD", "AB I23CD", "AB1Z3CD"):
        hits = matcher.match(read)
        assert [(h.hotlist_id, h.plate, h.distance) for h in hits] == [
            ("furti", "AB123CD", 1)], read
    # Two substitutions, or a substitution outside the classes, hit nothing.
    for read in ("A8123C0", "AB123CE", "AB123C", "XY999ZZ"):
        assert matcher.match(read) == [], read
    with pytest.raises(InvalidInput):
        matcher.match("AB@123")


def test_expired_entries_never_hit(db_lists: Database) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    with db_lists.write() as conn:
        hotlists.add_entry(conn, CONSOLE, "furti", EntryIn(plate="EF456GH", expires_at=soon))
    matcher = HotlistMatcher(db_lists)
    matcher.refresh()
    assert [h.expires_at for h in matcher.match("EF456GH")] == [soon]
    later = soon + timedelta(seconds=1)
    assert matcher.match("EF456GH", at=later) == []
    assert [h.distance for h in matcher.match("EF4S6GH")] == [1]
    assert matcher.match("EF4S6GH", at=later) == []  # nor by look-alike
    with db_lists.write() as conn:
        assert hotlists.lookup(conn, CONSOLE, WHY, "EF456GH", at=later) == []
        assert [h.hotlist_id for h in hotlists.lookup(conn, CONSOLE, WHY, "EF4S6GH")] == [
            "furti"]


def test_priority_orders_hits(db_lists: Database) -> None:
    with db_lists.write() as conn:
        # A listed look-alike of a listed plate: both in one bucket, each judged alone.
        hotlists.add_entry(conn, CONSOLE, "furti", EntryIn(plate="AB123C0", priority=99))
        hotlists.add_entry(conn, CONSOLE, "assicurazione", EntryIn(plate="ZZ999ZZ",
                                                                   priority=95))
    matcher = HotlistMatcher(db_lists)
    matcher.refresh()
    hits = matcher.match("AB123CD")
    assert [(h.hotlist_id, h.plate, h.distance, h.priority) for h in hits] == [
        ("furti", "AB123C0", 1, 99), ("furti", "AB123CD", 0, 90),
        ("assicurazione", "AB123CD", 0, 40)]
    assert [h.priority for h in matcher.match("ZZ999ZZ")] == [95]
    with db_lists.write() as conn:
        looked = hotlists.lookup(conn, CONSOLE, WHY, "ab-123-cd")
    assert looked == hits


def test_refresh_reloads_only_what_changed(db_lists: Database) -> None:
    matcher = HotlistMatcher(db_lists)
    matcher.refresh()
    assert matcher.refresh() == []  # nothing changed: nothing reloaded
    with db_lists.write() as conn:
        hotlists.import_entries(conn, CONSOLE, "assicurazione", b"LM789NP\nAB123CD\n",
                                fmt=FileFormat.TXT)
    assert matcher.refresh() == ["assicurazione"]
    assert [h.hotlist_id for h in matcher.match("LM789NP")] == ["assicurazione"]
    with db_lists.write() as conn:
        hotlists.update_hotlist(conn, CONSOLE, "furti", HotlistPatch(active=False))
    assert matcher.refresh() == [] and set(matcher.revisions) == {"assicurazione"}
    assert [h.hotlist_id for h in matcher.match("AB123CD")] == ["assicurazione"]
    with db_lists.write() as conn:
        hotlists.update_hotlist(conn, CONSOLE, "furti", HotlistPatch(active=True,
                                                                     priority=10))
        hotlists.remove_entry(conn, CONSOLE, "assicurazione", "LM789NP")
    assert sorted(matcher.refresh()) == ["assicurazione", "furti"]
    assert matcher.match("LM789NP") == []
    assert [(h.hotlist_id, h.priority) for h in matcher.match("AB123CD")] == [
        ("assicurazione", 40), ("furti", 10)]  # the list's new default priority


def test_rate_with_fifty_thousand_entries(db_lists: Database) -> None:
    listed = [f"{a}{b}{n:03d}{c}{d}" for a in "ABCDE" for b in "FGHLM" for n in range(200)
              for c, d in ("KL", "NP", "RS", "TV", "WX", "YZ", "KN", "PR", "ST", "VW")][:50_000]
    with db_lists.write() as conn:
        hotlists.import_entries(conn, CONSOLE, "furti", "\n".join(listed).encode(),
                                fmt=FileFormat.TXT)
    matcher = HotlistMatcher(db_lists)
    matcher.refresh()
    assert matcher.entries == 50_002
    reads = [f"Z{p[1:]}" for p in listed[:20_000]]  # misses, as nearly every read is
    started = time.perf_counter()
    for read in reads:
        matcher.match(read)
    rate = len(reads) / (time.perf_counter() - started)
    assert rate > 10_000, f"{rate:,.0f} reads/s"
    assert [h.plate for h in matcher.match(listed[123].replace("0", "O", 1))] == [listed[123]]
