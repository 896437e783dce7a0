"""Who is acting, what they may do, and which zones they may see."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from vigila.access.roles import Permission, Role, permissions_of
from vigila.core.errors import Forbidden, InvalidInput, PurposeRequired


@dataclass(frozen=True)
class Principal:
    user_id: int | None  # None for the local command line
    username: str
    agency_id: str | None
    roles: frozenset[Role]
    all_zones: bool
    zone_ids: frozenset[str] = field(default_factory=frozenset)
    client: str | None = None
    # Set only for the command line: a person at the server's console, with the
    # operating system's rights over the data folder anyway.
    superuser: bool = False

    @classmethod
    def console(cls, who: str) -> Principal:
        return cls(None, f"cli:{who}", None, frozenset(), True, superuser=True)

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset(Permission) if self.superuser else permissions_of(self.roles)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(f"your roles do not grant {permission.value}")

    def sees_zone(self, zone_id: str | None) -> bool:
        return self.all_zones or (zone_id is not None and zone_id in self.zone_ids)

    def zone_clause(self, zone_column: sa.ColumnElement[str | None]) -> sa.ColumnElement[bool]:
        """The WHERE clause that keeps a query inside the zones granted (art. 25)."""
        if self.all_zones:
            return sa.true()
        if not self.zone_ids:
            return sa.false()
        return zone_column.in_(sorted(self.zone_ids))


@dataclass(frozen=True)
class Purpose:
    """Why personal data is read: a text and a case or request reference."""

    text: str
    reference: str

    @classmethod
    def parse(cls, text: str | None, reference: str | None) -> Purpose:
        text = (text or "").strip()
        reference = (reference or "").strip()
        if not text and not reference:
            raise PurposeRequired(
                "reading personal data needs a stated purpose: send the headers "
                "Vigila-Purpose (why) and Vigila-Reference (case or request reference)"
            )
        for header, value in (("Vigila-Purpose", text), ("Vigila-Reference", reference)):
            if "\x00" in value:  # percent-encoded %00; no database text can hold it
                raise InvalidInput.on(header, "must not contain the NUL character (U+0000)")
        if len(text) < 5:
            raise InvalidInput.on("Vigila-Purpose", "state the purpose in at least 5 characters")
        if len(text) > 1000:
            raise InvalidInput.on("Vigila-Purpose", "at most 1000 characters")
        if len(reference) < 3:
            raise InvalidInput.on(
                "Vigila-Reference", "give the case or request reference (at least 3 characters)"
            )
        if len(reference) > 256:
            raise InvalidInput.on("Vigila-Reference", "at most 256 characters")
        return cls(text, reference)
