"""The format table, format by format: its examples, near misses, display forms, priors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from plate_samples import plates

from vigila.core.errors import InvalidInput
from vigila.plates import (
    COUNTRY_PRIORS,
    FORMATS,
    OLD_PLATE_PROVINCES,
    PROVINCES,
    PlateFormat,
    classify,
    is_valid,
    normalise,
)
from vigila.plates.formats import DIGITS, IT_CAR_FIRST, IT_LETTERS, MAX_PLATE_CHARS

BY_ID = {f.id: f for f in FORMATS}

# Texts close to a format that it must refuse, with the reason.
NEAR_MISSES: dict[str, list[str]] = {
    "it_car": ["AI123CD",   # no I in Italian series
               "AB123CU",   # no U
               "AQ123CD",   # no Q
               "AB12CD", "AB1234CD", "A1123CD",
               "XA123BC",   # X series: trailers
               "YA123BC"],  # Y series: Polizia Locale
    "it_trailer": ["XI123BC", "XA12BC", "AA123BC"],
    "it_motorcycle": ["AB1234", "AO12345", "A123456", "AB123456"],
    "it_moped": ["X12222",   # no 1
                 "XA2222",   # no vowels
                 "XQ2222", "X2222", "Y22222", "X222222"],
    "it_moped_1993": ["47A2I", "4723", "47A234"],
    "it_polizia_locale": ["YI123AB", "Y12222", "YA12AB"],
    "it_polizia": ["POLIZIA1234", "POLIZIAF123", "POLIZIAFF1234", "POLIZIF1234"],
    "it_military": ["EIAB12", "XXAB123", "EI1B123", "EIABC123"],
    "it_gdf": ["GDIF12AB", "GDF123AB", "GDIF123A"],
    "it_vigili_fuoco": ["VF0123", "VF123456", "VFA123"],
    "it_ee": ["EE12AB", "EEAB12", "EE1234AB"],
    "it_diplomatic": ["CD12AB3", "CD123456", "PTA1234", "CD12345AB"],
    "it_consular": ["CC12345AB", "CC123456", "CCAB"],
    "it_old_provincial": ["XX123456",   # not a province
                          "BT123456",   # Barletta-Andria-Trani: created after 1994
                          "MI1234567", "MIAB1234", "MIC12345"],
    "fr_siv": ["AI123CD", "AU123CD", "AB123C", "AB1234CD"],
    "fr_fni": ["1234AB20", "12345AB75", "1234ABCD75"],
    "de": ["MAB0123",    # no leading zero
           "MABCDE12", "M12345",
           "ABCDE1234"],  # nine characters
    "ch": ["XX123456", "ZH1234567", "ZH0123"],
    "at": ["W123456A", "W0123A", "12345A"],
    "es": ["1234ABC",    # vowels not used
           "123BCD", "1234BCQ"],
    "es_provincial": ["M12345AB", "M123AB"],
    "si": ["XX12345", "LJ123", "LJ123456"],
    "sk": ["BA12AB", "B1123AB", "BA123A"],
    "cz": ["0A23456", "1Q23456", "1A2345"],
    "pl": ["XA12345", "WA1234", "WAB1D34"],
    "br_mercosul": ["ABC1234", "AB1C23", "ABC1D234"],
    "br_old": ["ABC123", "AB12345", "ABC12345"],
    "us_common": ["AB12", "ABCD123", "12ABC3"],
}  # fmt: skip


def test_every_format_has_examples_and_near_misses() -> None:
    assert len(BY_ID) == len(FORMATS), "format ids are unique"
    for fmt in FORMATS:
        assert fmt.examples, fmt.id
        assert fmt.note, fmt.id
        assert fmt.id == "generic" or fmt.id in NEAR_MISSES, fmt.id
        assert fmt.country is None or fmt.country in COUNTRY_PRIORS
        assert max(fmt.lengths) <= MAX_PLATE_CHARS


@pytest.mark.parametrize(
    ("fmt", "example"), [(f, e) for f in FORMATS for e in f.examples],
    # The format's id, not its repr: frozensets print in a per-process order, and pytest-xdist
    # needs every worker to collect the same test ids.
    ids=lambda v: v.id if isinstance(v, PlateFormat) else str(v),
)
def test_examples_classify_as_their_format(fmt: PlateFormat, example: str) -> None:
    assert normalise(example) == example, "examples are written in canonical form"
    found = [m.format_id for m in classify(example)]
    assert fmt.id in found
    if fmt.id == "generic":
        assert found == ["generic"] and not is_valid(example)
    else:
        assert is_valid(example)
        assert is_valid(example, fmt.country)


@pytest.mark.parametrize(
    ("format_id", "text"), [(f, t) for f, ts in NEAR_MISSES.items() for t in ts], ids=str
)
def test_near_misses_are_refused(format_id: str, text: str) -> None:
    assert format_id not in [m.format_id for m in classify(text)]


@settings(max_examples=300, deadline=None)
@given(plates())
def test_every_text_a_format_admits_classifies_as_it(sample: tuple[PlateFormat, str]) -> None:
    fmt, text = sample
    found = {m.format_id: m for m in classify(text)}
    assert fmt.id in found
    # The display form is the same plate: normalising it gives the text back.
    assert normalise(found[fmt.id].display) == text
    assert is_valid(text, fmt.country)


@pytest.mark.parametrize(
    ("text", "format_id", "display"),
    [
        ("AB123CD", "it_car", "AB 123 CD"),
        ("AB12345", "it_motorcycle", "AB 12345"),
        ("XA123BC", "it_trailer", "XA 123 BC"),
        ("X22222", "it_moped", "X22 222"),
        ("POLIZIAF1234", "it_polizia", "POLIZIA F1234"),
        ("EIAB123", "it_military", "EI AB 123"),
        ("GDIF123AB", "it_gdf", "GdiF 123 AB"),
        ("VF12345", "it_vigili_fuoco", "VF 12345"),
        ("EE123AB", "it_ee", "EE 123 AB"),
        ("PO123456", "it_old_provincial", "PO 123456"),
        ("ROMAA12345", "it_old_provincial", "ROMA A12345"),
        ("GQ456HK", "fr_siv", "GQ-456-HK"),
        ("1234AB75", "fr_fni", "1234 AB 75"),
        ("1234BCD", "es", "1234 BCD"),
        ("1A23456", "cz", "1A2 3456"),
        ("ZH123456", "ch", "ZH 123456"),
    ],
)
def test_display_form(text: str, format_id: str, display: str) -> None:
    (match,) = [m for m in classify(text) if m.format_id == format_id]
    assert match.display == display
    assert match.country == BY_ID[format_id].country
    assert match.kind == BY_ID[format_id].kind


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("AB123CD", "it_car"),         # also French and Slovak: Italy's prior decides
        ("BA123AB", "it_car"),
        ("EIAB123", "it_military"),    # a German district could spell EIAB: narrower wins
        ("VF12345", "it_vigili_fuoco"),
        ("CD123AQ", "it_diplomatic"),
        ("GQ456HK", "fr_siv"),         # Q: not Italian
        ("TI1234", "ch"),
        ("LJAB123", "si"),
        ("PTA12345", "it_diplomatic"),
    ],
)
def test_likeliest_reading_comes_first(text: str, first: str) -> None:
    found = classify(text)
    assert found[0].format_id == first
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_generic_fallback_only_when_nothing_else_fits() -> None:
    assert [m.format_id for m in classify("12345678")] == ["generic"]
    assert "generic" not in [m.format_id for m in classify("AB123CD")]
    assert classify("A") == []  # too short even for the fallback
    assert classify("12345678901") == []  # too long for it
    assert not is_valid("12345678")


def test_country_restricts_the_formats() -> None:
    assert [m.country for m in classify("AB123CD", "fr")] == ["FR"]
    assert [m.format_id for m in classify("1234BCD", "IT")] == ["generic"]
    with pytest.raises(InvalidInput) as caught:
        classify("AB123CD", "JP")
    assert caught.value.errors[0].field == "country"
    with pytest.raises(InvalidInput):
        is_valid("AB123CD", "XX")


def test_is_valid_refuses_bad_input_quietly() -> None:
    assert not is_valid("")
    assert not is_valid("\x00")
    assert not is_valid("A" * 200)


def test_position_sets_for_a_grammar_aware_decoder() -> None:
    (sets,) = BY_ID["it_car"].position_sets(7)
    assert sets == (IT_CAR_FIRST, IT_LETTERS, DIGITS, DIGITS, DIGITS, IT_LETTERS, IT_LETTERS)
    assert BY_ID["it_car"].position_sets(6) == []
    assert BY_ID["it_car"].lengths == {7}
    # Word lists relax to the characters seen at each position.
    (polizia,) = BY_ID["it_polizia"].position_sets(12)
    assert polizia[:7] == tuple(frozenset(c) for c in "POLIZIA")
    assert len(BY_ID["de"].position_sets(7)) > 1  # several splits of letters and digits


def test_province_tables() -> None:
    assert len(PROVINCES) == 107
    assert all(len(c) == 2 and c.isalpha() and c.isupper() for c in PROVINCES)
    assert PROVINCES["PO"] == "Prato" and PROVINCES["RM"] == "Roma"
    assert "ROMA" in OLD_PLATE_PROVINCES and "RM" not in OLD_PLATE_PROVINCES
    assert {"FO", "PS"} <= OLD_PLATE_PROVINCES  # Forlì and Pesaro before 1999
    assert not {"BT", "FM", "MB", "SU", "FC", "PU"} & OLD_PLATE_PROVINCES
