"""Position-aware repair: a character the grammar forbids where it stands becomes the
look-alike the grammar allows there."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from plate_samples import plates

from vigila.core.errors import InvalidInput
from vigila.plates import PlateFormat, classify, lookalike_distance, repair


@pytest.mark.parametrize(
    ("raw", "country", "text", "format_id", "changes"),
    [
        ("A8123CD", None, "AB123CD", "it_car", 1),      # 2nd place is a letter: 8 → B
        ("AB1O3CD", None, "AB103CD", "it_car", 1),      # a letter among the digits: O → 0
        ("0A123BC", "IT", "DA123BC", "it_car", 1),      # 0 → D, since Italy has no O or Q
        ("A8I23CD", "IT", "AB123CD", "it_car", 2),
        ("AB 123 C0", "IT", "AB123CD", "it_car", 1),
        ("X2B3CO", "IT", "X2B3CD", "it_moped", 1),      # mopeds have no O and no 0
        ("P0LIZIAF1234", None, "POLIZIAF1234", "it_polizia", 1),
        ("EIAB1Z3", None, "EIAB123", "it_military", 1),
        ("M1123456", "IT", "MI123456", "it_old_provincial", 1),  # the province code too
        ("1Z34BCD", None, "1234BCD", "es", 1),
        ("AB123CD", None, "AB123CD", "it_car", 0),      # nothing to repair
    ],
)
def test_repair_by_position(
    raw: str, country: str | None, text: str, format_id: str, changes: int
) -> None:
    best = repair(raw, country)[0]
    assert (best.text, best.format_id, best.changes) == (text, format_id, changes)


def test_each_change_costs_and_orders_the_readings() -> None:
    found = repair("A8123CD")
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    # An Austrian or Spanish reading needs no change, but those formats are broad and
    # foreign: the one-change Italian reading still comes first.
    assert {m.format_id for m in found if m.changes == 0} >= {"at", "es_provincial"}
    assert found[0].format_id == "it_car"


def test_alternatives_follow_the_class_order() -> None:
    # A French letter slot reading 0 may be D or Q (O is not issued there): both come
    # back, D first as the likelier reading.
    texts = [m.text for m in repair("0A123BC", "FR")]
    assert texts[:2] == ["DA123BC", "QA123BC"]


def test_no_repair_outside_the_classes_or_the_budget() -> None:
    # E is not a look-alike of any digit: no Italian car reading, so the fallback.
    assert [m.format_id for m in repair("AB12ECD", "IT")] == ["generic"]
    assert "it_car" not in [m.format_id for m in repair("48I23C0", "IT")]  # 4 changes
    assert repair("48I23C0", "IT", max_changes=4)[0].text == "AB123CD"
    assert len(repair("A8123CD", limit=2)) == 2


@settings(max_examples=200, deadline=None)
@given(plates())
def test_repair_without_changes_is_classify(sample: tuple[PlateFormat, str]) -> None:
    _, text = sample
    exact = {(m.format_id, m.text) for m in repair(text, max_changes=0, limit=100)}
    assert exact == {(m.format_id, m.text) for m in classify(text)}


@settings(max_examples=200, deadline=None)
@given(plates())
def test_changes_count_lookalike_substitutions(sample: tuple[PlateFormat, str]) -> None:
    _, text = sample
    for m in repair(text, limit=100):
        assert lookalike_distance(text, m.text) == m.changes <= 2


def test_repair_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput):
        repair("")
    with pytest.raises(InvalidInput):
        repair("AB123CD", "ZZ")
