"""The plate formats: character sets, code lists and one table row per format.

A format is one or more *shapes*; a shape is a sequence of *segments*, each a run of
characters from one set (`Run`) or one word from a list (`Word`: province codes, fixed
prefixes such as POLIZIA). Matching, repair, look-alike filtering and constrained OCR
decoding all read this one table, so a new format is one new row.

Texts here are normalised (A-Z, 0-9, no separators); `sep` is only for the display form.
Where a row is looser or stricter than the real rule, or where the source is weak, its
note says so. Sources are named per row: Italian plates mainly from targheitaliane.it
(Michele Berionne's reference site), the Gazzetta Ufficiale and it.wikipedia; the
neighbours' rows are summaries of their registration rules, deliberately generous.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

DIGITS = frozenset(string.digits)
NONZERO = frozenset("123456789")
LETTERS = frozenset(string.ascii_uppercase)
ALNUM = DIGITS | LETTERS
# Italy since 1994: no I, O, Q, U (they read as 1, 0, 0 and V when written by hand).
IT_LETTERS = LETTERS - frozenset("IOQU")
# XA-XZ are trailers (since 20 Feb 2013), YA-YZ Polizia Locale: not ordinary cars.
IT_CAR_FIRST = IT_LETTERS - frozenset("XY")
# Mopeds since 14 Jul 2006 (DPR 153/2006): digits 2-9 and consonants without Q, after the
# leading X; no 0, 1 and no vowels, so the six characters cannot spell words. Source: a
# plate collectors' description (first plate X22 222), consistent with photographs.
IT_MOPED_CHARS = frozenset("23456789BCDFGHJKLMNPRSTVWXYZ")
# Old provincial progressive codes (1927-1994): the first letter series ran
# A B D E F G H J K L M N P R S T U V Z X Y W; the later series with the letter after or
# inside the digits used A D E F G H J L M N P R S T V W X Y Z (it.wikipedia, 2007).
IT_OLD_FIRST = frozenset("ABDEFGHJKLMNPRSTUVZXYW")
IT_OLD_LATER = frozenset("ADEFGHJLMNPRSTVWXYZ")
FR_LETTERS = LETTERS - frozenset("IOU")  # SIV (2009): I, O, U are not issued
ES_CONSONANTS = frozenset("BCDFGHJKLMNPRSTVWXYZ")  # since 2000: no vowels, no Ñ, no Q
PL_SERIES = ALNUM - frozenset("BDIOZ")  # read as 8, 0, 1, 0, 2: not used in the series

Kind = Literal[
    "car",
    "motorcycle",
    "moped",
    "trailer",
    "special",
    "diplomatic",
    "temporary",
    "old_provincial",
    "generic",
]

# Current province codes (sigle) as used on the blue band since 1999 and in documents.
PROVINCES: dict[str, str] = {
    "AG": "Agrigento", "AL": "Alessandria", "AN": "Ancona", "AO": "Aosta",
    "AP": "Ascoli Piceno", "AQ": "L'Aquila", "AR": "Arezzo", "AT": "Asti",
    "AV": "Avellino", "BA": "Bari", "BG": "Bergamo", "BI": "Biella", "BL": "Belluno",
    "BN": "Benevento", "BO": "Bologna", "BR": "Brindisi", "BS": "Brescia",
    "BT": "Barletta-Andria-Trani", "BZ": "Bolzano", "CA": "Cagliari", "CB": "Campobasso",
    "CE": "Caserta", "CH": "Chieti", "CL": "Caltanissetta", "CN": "Cuneo", "CO": "Como",
    "CR": "Cremona", "CS": "Cosenza", "CT": "Catania", "CZ": "Catanzaro", "EN": "Enna",
    "FC": "Forlì-Cesena", "FE": "Ferrara", "FG": "Foggia", "FI": "Firenze", "FM": "Fermo",
    "FR": "Frosinone", "GE": "Genova", "GO": "Gorizia", "GR": "Grosseto", "IM": "Imperia",
    "IS": "Isernia", "KR": "Crotone", "LC": "Lecco", "LE": "Lecce", "LI": "Livorno",
    "LO": "Lodi", "LT": "Latina", "LU": "Lucca", "MB": "Monza e Brianza", "MC": "Macerata",
    "ME": "Messina", "MI": "Milano", "MN": "Mantova", "MO": "Modena",
    "MS": "Massa-Carrara", "MT": "Matera", "NA": "Napoli", "NO": "Novara", "NU": "Nuoro",
    "OR": "Oristano", "PA": "Palermo", "PC": "Piacenza", "PD": "Padova", "PE": "Pescara",
    "PG": "Perugia", "PI": "Pisa", "PN": "Pordenone", "PO": "Prato", "PR": "Parma",
    "PT": "Pistoia", "PU": "Pesaro e Urbino", "PV": "Pavia", "PZ": "Potenza",
    "RA": "Ravenna", "RC": "Reggio Calabria", "RE": "Reggio Emilia", "RG": "Ragusa",
    "RI": "Rieti", "RM": "Roma", "RN": "Rimini", "RO": "Rovigo", "SA": "Salerno",
    "SI": "Siena", "SO": "Sondrio", "SP": "La Spezia", "SR": "Siracusa", "SS": "Sassari",
    "SU": "Sud Sardegna", "SV": "Savona", "TA": "Taranto", "TE": "Teramo", "TN": "Trento",
    "TO": "Torino", "TP": "Trapani", "TR": "Terni", "TS": "Trieste", "TV": "Treviso",
    "UD": "Udine", "VA": "Varese", "VB": "Verbano-Cusio-Ossola", "VC": "Vercelli",
    "VE": "Venezia", "VI": "Vicenza", "VR": "Verona", "VT": "Viterbo",
    "VV": "Vibo Valentia",
}  # fmt: skip

# Codes that appeared on the old provincial plates (issued until 1994): the current
# ones that existed then, Forlì (FO, FC since 1999) and Pesaro (PS, PU since 1999); Rome
# wrote its name in full (ROMA), RM only appeared small on the 1976-85 rear plates.
OLD_PLATE_PROVINCES: frozenset[str] = (
    frozenset(PROVINCES) - {"BT", "FC", "FM", "MB", "SU", "PU", "RM"}
) | {"FO", "PS", "ROMA"}

CH_CANTONS = frozenset((
    "AG", "AI", "AR", "BE", "BL", "BS", "FR", "GE", "GL", "GR", "JU", "LU", "NE", "NW", "OW",
    "SG", "SH", "SO", "SZ", "TG", "TI", "UR", "VD", "VS", "ZG", "ZH",
))  # fmt: skip
SI_REGIONS = frozenset(("CE", "GO", "KK", "KP", "KR", "LJ", "MB", "MS", "NM", "PO", "SG"))
CZ_REGIONS = frozenset("ABCEHJKLMPSTUZ")  # the 14 regions' letters (2001 system)
PL_VOIVODESHIPS = frozenset("BCDEFGKLNOPRSTWZ")
# French departments on the old FNI plates: 01-95 (Corsica as 2A/2B), overseas 971-976.
FR_DEPARTMENTS = frozenset(
    [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"] + [str(n) for n in range(971, 977)]
)


@dataclass(frozen=True)
class Run:
    """`min`..`max` characters, each from `chars`."""

    chars: frozenset[str]
    min: int
    max: int
    sep: str = " "  # after this segment in the display form


@dataclass(frozen=True)
class Word:
    """One word from `words` (a code list or a fixed prefix)."""

    words: frozenset[str]
    sep: str = " "
    shown: tuple[tuple[str, str], ...] = ()  # display spelling where it differs (GDIF→GdiF)

    @property
    def min(self) -> int:
        return min(map(len, self.words))

    @property
    def max(self) -> int:
        return max(map(len, self.words))

    def of_length(self, n: int) -> tuple[str, ...]:
        """The words of `n` characters, sorted."""
        return _words_of_length(self.words, n)


@cache
def _words_of_length(words: frozenset[str], n: int) -> tuple[str, ...]:
    return tuple(sorted(w for w in words if len(w) == n))


Segment = Run | Word
# A layout fixes each segment's length for one text length: (segment, start, length).
Layout = tuple[tuple[Segment, int, int], ...]


def run(chars: frozenset[str], n: int, m: int | None = None, sep: str = " ") -> Run:
    return Run(chars, n, n if m is None else m, sep)


def word(*words: str, sep: str = " ", shown: dict[str, str] | None = None) -> Word:
    return Word(frozenset(words), sep, tuple(sorted((shown or {}).items())))


@dataclass(frozen=True)
class Shape:
    segments: tuple[Segment, ...]
    max_len: int | None = None  # a limit on the whole text, beyond the segments' own

    @property
    def min_len(self) -> int:
        return sum(s.min for s in self.segments)

    @property
    def longest(self) -> int:
        top = sum(s.max for s in self.segments)
        return top if self.max_len is None else min(top, self.max_len)

    def layouts(self, n: int) -> tuple[Layout, ...]:
        """Every way to give the segments lengths that add up to `n`."""
        return _layouts(self, n)


@cache
def _layouts(shape: Shape, n: int) -> tuple[Layout, ...]:
    # Cached: the table is fixed, and decoding asks for the same layouts on every read.
    if not shape.min_len <= n <= shape.longest:
        return ()
    segs = shape.segments
    tail_min = [sum(s.min for s in segs[i:]) for i in range(len(segs) + 1)]
    tail_max = [sum(s.max for s in segs[i:]) for i in range(len(segs) + 1)]

    def place(i: int, start: int) -> Iterator[Layout]:
        if i == len(segs):
            if start == n:
                yield ()
            return
        seg = segs[i]
        if isinstance(seg, Word):
            lengths: Iterable[int] = sorted({len(w) for w in seg.words})
        else:
            lengths = range(seg.min, seg.max + 1)
        for length in lengths:
            rest = n - start - length
            if tail_min[i + 1] <= rest <= tail_max[i + 1]:
                for tail in place(i + 1, start + length):
                    yield ((seg, start, length), *tail)

    return tuple(place(0, 0))


@dataclass(frozen=True)
class PlateFormat:
    id: str
    country: str | None  # ISO 3166-1 alpha-2; None for the generic fallback
    kind: Kind
    label: str
    shapes: tuple[Shape, ...]
    weight: float  # prior share of plates within its country (the most common format: 1)
    examples: tuple[str, ...]
    note: str = ""
    # How many texts of each length the format admits (an upper bound where a text has
    # two layouts): a reading of a narrow format is worth more than one of a broad format.
    counts: dict[int, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts: dict[int, float] = {}
        for shape in self.shapes:
            for n in range(shape.min_len, shape.longest + 1):
                for layout in shape.layouts(n):
                    size = 1.0
                    for seg, _, length in layout:
                        if isinstance(seg, Run):
                            size *= len(seg.chars) ** length
                        else:
                            size *= sum(len(w) == length for w in seg.words)
                    counts[n] = counts.get(n, 0.0) + size
        object.__setattr__(self, "counts", counts)

    @property
    def lengths(self) -> frozenset[int]:
        return frozenset(self.counts)

    def position_sets(self, n: int) -> list[tuple[frozenset[str], ...]]:
        """The allowed characters per position, one tuple per layout of length `n`.

        For a grammar-aware OCR decoder. A word list is relaxed to the characters found
        at each position among its words; `best_text` scores the words exactly.
        """
        out: list[tuple[frozenset[str], ...]] = []
        for shape in self.shapes:
            for layout in shape.layouts(n):
                sets: list[frozenset[str]] = []
                for seg, _, length in layout:
                    if isinstance(seg, Run):
                        sets.extend([seg.chars] * length)
                    else:
                        words = [w for w in seg.words if len(w) == length]
                        sets.extend(frozenset(w[k] for w in words) for k in range(length))
                if tuple(sets) not in out:
                    out.append(tuple(sets))
        return out


def _shape(*segments: Segment, max_len: int | None = None) -> Shape:
    return Shape(tuple(segments), max_len)


_IT_PREFIX_NOTE = "The prefix is part of the registration and of the normalised text."

FORMATS: tuple[PlateFormat, ...] = (
    # ---- Italy ----------------------------------------------------------------------
    PlateFormat(
        "it_car", "IT", "car", "Autoveicolo (dal 1994)",
        (_shape(run(IT_CAR_FIRST, 1, sep=""), run(IT_LETTERS, 1), run(DIGITS, 3),
                run(IT_LETTERS, 2)),),
        1.0, ("AB123CD", "GM456ZZ", "ZA000AA"),
        "AA 000 AA issued nationwide since 28 Feb 1994, no I O Q U (targheitaliane.it, "
        "it.wikipedia). ZA-ZZ are the two-line square plates. X and Y first letters are "
        "excluded here: reserved for trailers and Polizia Locale, never reached by the "
        "sequential series (at G* in the 2020s).",
    ),
    PlateFormat(
        "it_trailer", "IT", "trailer", "Rimorchio",
        (_shape(word("X", sep=""), run(IT_LETTERS, 1), run(DIGITS, 3), run(IT_LETTERS, 2)),),
        0.1, ("XA123BC",),
        "XA 000 AA - XZ 999 ZZ on one line reserved for trailers, caravans and carrelli "
        "appendice since 20 Feb 2013 (it.wikipedia, Sigle automobilistiche). Older trailers "
        "carry car-series plates, which match it_car.",
    ),
    PlateFormat(
        "it_motorcycle", "IT", "motorcycle", "Motoveicolo (dal 1994)",
        (_shape(run(IT_LETTERS, 2), run(DIGITS, 5)),),
        0.3, ("AB12345", "DF98765"),
        "Two letters and five digits since 1994, two rows (AA / 00000) since 1999 "
        "(targheitaliane.it). Pairs equal to province codes are said to be skipped; "
        "not enforced.",
    ),
    PlateFormat(
        "it_moped", "IT", "moped", "Ciclomotore (dal 2006)",
        (_shape(word("X", sep=""), run(IT_MOPED_CHARS, 2), run(IT_MOPED_CHARS, 3)),),
        0.1, ("X22222", "X3BK7Z"),
        "Six characters from 14 Jul 2006 (DPR 6 Mar 2006 n. 153), X then five of 2-9 and "
        "consonants without Q. The character set comes from a collectors' forum and "
        "matches photographs; treat it as likely, not official.",
    ),
    PlateFormat(
        "it_moped_1993", "IT", "moped", "Contrassegno ciclomotore (1993-2012)",
        (_shape(run(DIGITS | IT_LETTERS, 2), run(DIGITS | IT_LETTERS, 3)),),
        0.005, ("47A23", "8X4RF"),
        "Five characters from 0-9 and letters without I O Q U, on a personal pentagonal "
        "plate from 1 Oct 1993 (targheitaliane.it); owners had to replace it by Feb 2012, "
        "so it is rare. It is loose (any five such characters), hence its low weight.",
    ),
    PlateFormat(
        "it_polizia_locale", "IT", "special", "Polizia Locale",
        (_shape(word("Y", sep=""), run(IT_LETTERS, 1), run(DIGITS, 3), run(IT_LETTERS, 2)),
         _shape(word("Y", sep=""), run(IT_MOPED_CHARS, 2), run(IT_MOPED_CHARS, 3))),
        0.05, ("YA123AB", "Y22222"),
        "DM 27 Apr 2006 n. 209; YA 000 AA - YZ 999 ZZ reserved to the local police "
        "(it.wikipedia). The Y moped series is reported by a secondary source only.",
    ),
    PlateFormat(
        "it_polizia", "IT", "special", "Polizia di Stato",
        (_shape(word("POLIZIA"), run(LETTERS, 1, sep=""), run(DIGITS, 4)),),
        0.01, ("POLIZIAF1234", "POLIZIAG0001"),
        "POLIZIA then a letter and four digits since 1989 (A0000 onwards; G0000-G9999 for "
        "motorcycles), targheitaliane.it. " + _IT_PREFIX_NOTE + " The word is printed small: "
        "a reader that drops it yields F1234, which matches no format (repair cannot add it).",
    ),
    PlateFormat(
        "it_military", "IT", "special", "Forze armate e Carabinieri",
        (_shape(word("EI", "CC", "AM", "MM"), run(LETTERS, 2), run(DIGITS, 3)),
         _shape(word("EI", "CC", "AM", "MM"), run(LETTERS, 1), run(DIGITS, 4))),
        0.01, ("EIAB123", "CCDH125", "AMAH500", "EIA6000"),
        "Since 1997 most armed forces use XX AA 000 (EI Esercito, AM Aeronautica, MM Marina; "
        "the Carabinieri the same with CC since 2000), sicurauto.it and targheitaliane.it. "
        "The letter + four digits shape is the motorcycles' (AM from A 6000); that it holds "
        "for every force is an assumption. " + _IT_PREFIX_NOTE,
    ),
    PlateFormat(
        "it_gdf", "IT", "special", "Guardia di Finanza",
        (_shape(word("GDIF", shown={"GDIF": "GdiF"}), run(DIGITS, 3), run(LETTERS, 2)),),
        0.005, ("GDIF123AB",),
        "GdiF * 000 AA since 1981 (targheitaliane.it); motorcycles and trailers kept "
        "older numeric series, not in this row. " + _IT_PREFIX_NOTE,
    ),
    PlateFormat(
        "it_vigili_fuoco", "IT", "special", "Vigili del Fuoco",
        (_shape(word("VF"), run(NONZERO, 1, sep=""), run(DIGITS, 0, 4)),),
        0.005, ("VF12345", "VF987"),
        "VF and a serial number, never renumbered since 1938, past 21300 in 2002 "
        "(targheitaliane.it). " + _IT_PREFIX_NOTE,
    ),
    PlateFormat(
        "it_ee", "IT", "temporary", "Escursionisti Esteri",
        (_shape(word("EE"), run(DIGITS, 3), run(LETTERS, 2)),
         _shape(word("EE"), run(LETTERS, 1, sep=""), run(DIGITS, 3))),
        0.005, ("EE123AB", "EEA123"),
        "Temporary plates for export or foreign residents: EE 000 AA since 1985, "
        "motorcycles EE A000 (targheitaliane.it, plate collectors' pages). The last two "
        "letters name the issuing province in batches.",
    ),
    PlateFormat(
        "it_diplomatic", "IT", "diplomatic", "Corpo Diplomatico",
        (_shape(word("CD"), run(DIGITS, 1, 4), run(LETTERS, 2)),
         _shape(word("CD", "PTA"), run(DIGITS, 5))),
        0.005, ("CD123AQ", "CD12345", "PTA12345"),
        "1984-2023: CD, a serial and a two-letter mission code (codes chosen by continent, "
        "e.g. AQ France; targheitaliane.it tables); the serial's digit count is not "
        "confirmed, 1-4 accepted. DM 11 Oct 2023 (GU 277/2023): CD 12345 and, for "
        "administrative and technical staff, PTA 12345.",
    ),
    PlateFormat(
        "it_consular", "IT", "diplomatic", "Corpo Consolare",
        (_shape(word("CC"), run(DIGITS, 1, 4), run(LETTERS, 2)),
         _shape(word("CC"), run(DIGITS, 5))),
        0.002, ("CC0001UE", "CC12345"),
        "Consular plates from 1995 with the mission code (a recorded example: CC 0001 UE, "
        "aista.it); CC 12345 since DM 11 Oct 2023. Not to be confused with Carabinieri "
        "CC AA 000 (it_military).",
    ),
    PlateFormat(
        "it_old_provincial", "IT", "old_provincial", "Targa provinciale (1927-1994)",
        tuple(
            _shape(word(*OLD_PLATE_PROVINCES), *progressive)
            for progressive in (
                (run(DIGITS, 1, 6),),
                (run(IT_OLD_FIRST, 1, sep=""), run(DIGITS, 5)),
                (run(DIGITS, 5, sep=""), run(IT_OLD_LATER, 1)),
                (run(DIGITS, 1, sep=""), run(IT_OLD_LATER, 1, sep=""), run(DIGITS, 4)),
                (run(DIGITS, 2, sep=""), run(IT_OLD_LATER, 1, sep=""), run(DIGITS, 3)),
            )
        ),
        0.02, ("PO123456", "MI7A1234", "ROMAA12345", "TO12345D", "FO12"),
        "Province code (ROMA for Rome) and a progressive of up to six characters: digits, "
        "then A00000-W99999, then 00000A, then the letter moved to the second and third "
        "place (it.wikipedia 2007). Generous: any number 1-999999, letters from the series' "
        "sets without checking the order of issue.",
    ),
    # ---- Neighbours -------------------------------------------------------------------
    PlateFormat(
        "fr_siv", "FR", "car", "SIV (depuis 2009)",
        (_shape(run(FR_LETTERS, 2, sep="-"), run(DIGITS, 3, sep="-"), run(FR_LETTERS, 2)),),
        1.0, ("AB123CD", "GQ456HK"),
        "AA-000-AA nationwide since 15 Apr 2009, no I O U. Looser than the real rule: "
        "SS blocks, WW (temporary) and 000 are not excluded.",
    ),
    PlateFormat(
        "fr_fni", "FR", "car", "FNI (1950-2009)",
        (_shape(run(DIGITS, 1, 4), run(FR_LETTERS, 1, 3), word(*FR_DEPARTMENTS)),),
        0.2, ("1234AB75", "56ABC2A", "123AB974"),
        "Number, one to three letters and the department; still on older cars. Letter "
        "rules of the series are not modelled.",
    ),
    PlateFormat(
        "de", "DE", "car", "Kennzeichen",
        (_shape(run(LETTERS, 1, 3, sep=""), run(LETTERS, 1, 2), run(NONZERO, 1, sep=""),
                run(DIGITS, 0, 3, sep=""), max_len=8),
         _shape(run(LETTERS, 1, 3, sep=""), run(LETTERS, 1, 2), run(NONZERO, 1, sep=""),
                run(DIGITS, 0, 3, sep=""), word("E", "H"), max_len=9)),
        1.0, ("MAB1234", "BXY99", "HHAB123E", "KA1H"),
        "District (1-3 letters, umlauts folded: TÜ → TU), 1-2 letters, 1-4 digits without a "
        "leading zero, at most 8 characters; E (electric) or H (historic) after (FZV). The "
        "district list (~700 codes) is not checked, so the split between district and "
        "letters is unknown and the display joins them.",
    ),
    PlateFormat(
        "ch", "CH", "car", "Kontrollschild",
        (_shape(word(*CH_CANTONS), run(NONZERO, 1, sep=""), run(DIGITS, 0, 5)),),
        1.0, ("ZH123456", "TI1234", "GE1"),
        "Canton code and 1-6 digits. Federal (A, M, P) and special series are not modelled.",
    ),
    PlateFormat(
        "at", "AT", "car", "Kennzeichen",
        (_shape(run(LETTERS, 1, 2), run(NONZERO, 1, sep=""), run(DIGITS, 0, 4, sep=""),
                run(LETTERS, 1, 3), max_len=8),
         _shape(run(LETTERS, 1, 2, sep=""), run(LETTERS - {"Q"}, 1, 5), run(NONZERO, 1, sep=""),
                run(DIGITS, 0, 4), max_len=8)),
        1.0, ("W12345A", "G123AB", "FK1ABC", "WMAX1"),
        "District (1-2 letters) then digits + letters (standard) or letters + digits "
        "(Wunschkennzeichen, no Q, KDV 1967). Looser: district list and the 3-6 character "
        "limit of the combination are not checked.",
    ),
    PlateFormat(
        "es", "ES", "car", "Matrícula (desde 2000)",
        (_shape(run(DIGITS, 4), run(ES_CONSONANTS, 3)),),
        1.0, ("1234BCD", "0000BBB"),
        "Four digits and three consonants (no vowels, Ñ, Q) nationwide since Sep 2000.",
    ),
    PlateFormat(
        "es_provincial", "ES", "car", "Matrícula provincial (1971-2000)",
        (_shape(run(LETTERS, 1, 2), run(DIGITS, 4), run(LETTERS, 1, 2)),),
        0.2, ("M1234AB", "BI5678Z"),
        "Province code, four digits, one or two letters. Province list not checked.",
    ),
    PlateFormat(
        "si", "SI", "car", "Registrska tablica",
        (_shape(word(*SI_REGIONS), run(ALNUM, 4, 5)),),
        1.0, ("LJAB123", "KP4512F"),
        "Region code and a 4-5 character combination. Looser: the combination's patterns "
        "and personalised plates are not modelled.",
    ),
    PlateFormat(
        "sk", "SK", "car", "Evidenčné číslo",
        (_shape(run(LETTERS, 2), run(DIGITS, 3, sep=""), run(LETTERS, 2)),),
        1.0, ("BA123AB", "KE987XY"),
        "District code, three digits, two letters (1997-2022); the national series from "
        "2023 keeps the shape as far as known. Same shape as Italian cars: the prior decides.",
    ),
    PlateFormat(
        "cz", "CZ", "car", "Registrační značka (od 2001)",
        (_shape(run(NONZERO, 1, sep=""), word(*CZ_REGIONS, sep=""), run(ALNUM, 1),
                run(DIGITS, 4)),),
        1.0, ("1A23456", "5T01234"),
        "Serial digit, region letter, one character, four digits (1A2 3456).",
    ),
    PlateFormat(
        "pl", "PL", "car", "Tablica rejestracyjna",
        (_shape(word(*PL_VOIVODESHIPS, sep=""), run(LETTERS, 1), run(DIGITS, 1, sep=""),
                run(PL_SERIES, 4)),
         _shape(word(*PL_VOIVODESHIPS, sep=""), run(LETTERS, 2), run(PL_SERIES, 4, 5))),
        1.0, ("WA12345", "KR1234A", "WPI1A23"),
        "Voivodeship letter and 1-2 district letters, then 4-5 characters of which at most "
        "two letters, B D I O Z not used. Looser: the letter count and positions are not "
        "checked.",
    ),
    # ---- Further afield: the countries of the real photos the ANPR engine is measured on.
    PlateFormat(
        "br_mercosul", "BR", "car", "Brasil, Mercosul (desde 2018)",
        (_shape(run(LETTERS, 3, sep=""), run(DIGITS, 1, sep=""), run(LETTERS, 1, sep=""),
                run(DIGITS, 2)),),
        1.0, ("ABC1D23", "RIO2A18"),
        "Mercosur plates, Brazil since Sep 2018 (CONTRAN res. 729/2018): LLL NLNN.",
    ),
    PlateFormat(
        "br_old", "BR", "car", "Brasil (1990-2018)",
        (_shape(run(LETTERS, 3, sep="-"), run(DIGITS, 4)),),
        1.0, ("ABC1234", "JQS5683"),
        "Grey plates of 1990-2018, LLL-NNNN (CONTRAN res. 231/2007); still most of the "
        "fleet, and the shape of every photo in the measured set.",
    ),
    PlateFormat(
        "us_common", "US", "car", "USA, common state serials",
        (_shape(run(LETTERS, 3, sep=" "), run(DIGITS, 3, 4)),
         _shape(run(DIGITS, 3, sep=" "), run(LETTERS, 3)),
         _shape(run(DIGITS, 1, sep=""), run(LETTERS, 3, sep=""), run(DIGITS, 3)),
         _shape(run(DIGITS, 1, sep=""), run(LETTERS, 2, sep=""), run(DIGITS, 4)),
         _shape(run(LETTERS, 2, sep=" "), run(DIGITS, 4, 5)),
         _shape(run(DIGITS, 1, sep=""), run(LETTERS, 1, sep=""), run(DIGITS, 5)),
         _shape(run(LETTERS, 1, sep=""), run(DIGITS, 6)),
         _shape(run(DIGITS, 5, 6, sep=""), run(LETTERS, 1, sep=""), run(DIGITS, 0, 1)),
         _shape(run(LETTERS, 2, sep=""), run(DIGITS, 1, sep=""), run(LETTERS, 1, sep=""),
                run(DIGITS, 1, sep=""), run(LETTERS, 1))),
        1.0, ("ABC1234", "7ABC123", "123ABC", "6TR2190", "8D79882", "AB1C2D"),
        "Each state issues its own serials; these are the shapes most states' standard "
        "passenger series share (California 1ABC234, the many ABC 1234 and 123 ABC "
        "states, Arizona's AB1C2D). A loose summary, not one state's rule; vanity and "
        "specialty plates fall to the generic fallback.",
    ),
    # ---- Anything else ----------------------------------------------------------------
    PlateFormat(
        "generic", None, "generic", "Formato non riconosciuto",
        (_shape(run(ALNUM, 2, 10)),),
        1e-4, ("12345678", "1A2B3C"),
        "2-10 letters or digits: the fallback when no format matches, so a foreign or "
        "personalised plate can still be stored and searched.",
    ),
)  # fmt: skip

# A control room in Italy: Italian plates are the rule, neighbours' an exception. A
# plate reader at a border may pass its own priors to best_text.
COUNTRY_PRIORS: dict[str, float] = {
    "IT": 1.0,
    "FR": 0.05,
    "DE": 0.05,
    "CH": 0.05,
    "AT": 0.03,
    "SI": 0.03,
    "ES": 0.02,
    "PL": 0.02,
    "CZ": 0.01,
    "SK": 0.01,
    # Far from Italy, here so that a reader abroad (or a benchmark on foreign photos) can
    # name them in its priors; a car from there in an Italian street is rare.
    "BR": 0.001,
    "US": 0.001,
}

# Longer normalised input is refused: above the longest format (POLIZIA + 5 = 12) with
# room for formats to come, far below anything that could be a plate.
MAX_PLATE_CHARS = 16
