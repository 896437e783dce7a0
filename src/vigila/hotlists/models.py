"""What the hotlists capability accepts and returns; one definition for API, CLI and import."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from vigila.core.errors import InvalidInput
from vigila.core.text import NoNul
from vigila.plates import normalise
from vigila.plates.text import MAX_RAW_CHARS

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                 NoNul]
Priority = Annotated[int, Field(ge=0, le=100, description="0 (lowest) to 100 (highest)")]
Reason = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True), NoNul]
# ISO 3166-1 alpha-2, as the plate grammar's formats name countries.
Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]
PlateText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_RAW_CHARS), NoNul]

MAX_REASON = 500


class HotlistKind(StrEnum):
    STOLEN = "stolen"  # the national list of stolen vehicles
    UNINSURED = "uninsured"
    NO_INSPECTION = "no_inspection"  # revisione scaduta
    SEIZED = "seized"
    POLICE_FLAGGED = "police_flagged"
    LOCAL = "local"


class LookalikePolicy(StrEnum):
    EXACT = "exact"
    ONE_SUBSTITUTION = "one_substitution"  # one OCR look-alike: 0/O/D/Q, 1/I, 8/B, ...


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HotlistIn(Strict):
    id: Slug
    name: Name
    kind: HotlistKind
    agency_id: Annotated[str, StringConstraints(max_length=64), NoNul] = Field(
        description="the owner agency")
    priority: Priority = 50
    # Exact unless asked: a look-alike hit can stop the wrong car, so fuzziness is chosen
    # per list by whoever answers for it.
    policy: LookalikePolicy = LookalikePolicy.EXACT
    active: bool = True


class HotlistPatch(Strict):
    name: Name | None = None
    kind: HotlistKind | None = None
    agency_id: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    priority: Priority | None = None
    policy: LookalikePolicy | None = None
    active: bool | None = None


class Hotlist(BaseModel):
    id: str
    name: str
    kind: HotlistKind
    agency_id: str
    priority: int
    policy: LookalikePolicy
    active: bool
    revision: int = Field(description="grows with every change to the list or its entries")
    entry_count: int
    created_at: datetime
    updated_at: datetime


def _plate(value: str) -> str:
    try:
        return normalise(value)
    except InvalidInput as exc:
        raise ValueError(exc.errors[0].message if exc.errors else exc.detail) from exc


class EntryIn(Strict):
    plate: PlateText = Field(description="as written; stored normalised (A-Z, 0-9)")
    country: Country | None = None
    priority: Priority | None = Field(default=None, description="unset: the list's priority")
    reason: Reason | None = None
    expires_at: AwareDatetime | None = Field(default=None,
                                             description="no hit after this instant")

    @field_validator("plate")
    @classmethod
    def _normalised(cls, value: str) -> str:
        return _plate(value)


class HotlistEntry(BaseModel):
    hotlist_id: str
    plate: str
    country: str | None
    priority: int | None = Field(description="null: the list's priority")
    reason: str | None
    expires_at: datetime | None
    added_at: datetime


class ImportMode(StrEnum):
    MERGE = "merge"  # add new plates, update listed ones, keep the rest
    REPLACE = "replace"  # the file becomes the whole list


class HotlistImportReport(BaseModel):
    hotlist_id: str
    mode: ImportMode
    rows: int = Field(description="data rows read (blank lines and comments not counted)")
    imported: int = Field(description="rows written: added + updated")
    added: int
    updated: int
    removed: int = Field(description="entries a replace dropped")
    rejected: int
    committed: bool
    errors: list[dict[str, Any]] = Field(description="row (as the user sees it), field, message")
    errors_total: int = Field(description="errors found; `errors` lists the first of them")
    seconds: float
