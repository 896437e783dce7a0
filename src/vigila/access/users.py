"""User accounts: agency, roles, zone scopes. Never deleted, only disabled."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from vigila.access import audit
from vigila.access.principal import Principal
from vigila.access.roles import Permission, Role
from vigila.access.sessions import check_password_policy, revoke_all, verify_password
from vigila.access.tables import user_roles, user_zones, users
from vigila.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.text import NoNul
from vigila.core.timeutil import utcnow
from vigila.registry.tables import agencies, zones

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                 NoNul]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,189}$", max_length=254),
                  NoNul]
AgencyRef = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
ZoneId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    full_name: Name
    email: Email | None = None
    agency_id: AgencyRef
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    all_zones: bool = False
    zone_ids: list[ZoneId] = Field(default_factory=list, max_length=500)
    password: Password


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full_name: Name | None = None
    email: Email | None = None
    agency_id: AgencyRef | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=len(Role))
    all_zones: bool | None = None
    zone_ids: list[ZoneId] | None = Field(default=None, max_length=500)
    active: bool | None = None
    password: Password | None = None
    current_password: Password | None = Field(
        default=None, description="required to change one's own password")


class User(BaseModel):
    id: int
    username: str
    full_name: str
    email: str | None
    agency_id: str
    roles: list[Role]
    all_zones: bool
    zone_ids: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime


def _check_refs(conn: Connection, agency_id: str | None, zone_ids: list[str] | None) -> None:
    if agency_id is not None and conn.execute(
        sa.select(agencies.c.id).where(agencies.c.id == agency_id)
    ).first() is None:
        raise InvalidInput.on("agency_id", f"no agency {agency_id!r}")
    if zone_ids:
        known = set(conn.execute(sa.select(zones.c.id).where(zones.c.id.in_(zone_ids))).scalars())
        missing = sorted(set(zone_ids) - known)
        if missing:
            raise InvalidInput.on("zone_ids", f"no such zone: {', '.join(missing)}")


def _load(conn: Connection, user_ids: list[int]) -> list[User]:
    if not user_ids:
        return []
    rows = conn.execute(sa.select(users).where(users.c.id.in_(user_ids)).order_by(users.c.id))
    roles: dict[int, list[Role]] = {}
    for uid, role in conn.execute(
        sa.select(user_roles.c.user_id, user_roles.c.role).where(user_roles.c.user_id.in_(user_ids))
    ):
        roles.setdefault(uid, []).append(Role(role))
    zs: dict[int, list[str]] = {}
    for uid, zone in conn.execute(
        sa.select(user_zones.c.user_id, user_zones.c.zone_id)
        .where(user_zones.c.user_id.in_(user_ids))
    ):
        zs.setdefault(uid, []).append(zone)
    return [
        User(
            id=r.id, username=r.username, full_name=r.full_name, email=r.email,
            agency_id=r.agency_id, roles=sorted(roles.get(r.id, [])), all_zones=r.all_zones,
            zone_ids=sorted(zs.get(r.id, [])), active=r.active, created_at=r.created_at,
            updated_at=r.updated_at, password_changed_at=r.password_changed_at,
        )
        for r in rows
    ]


def get(conn: Connection, actor: Principal, user_id: int) -> User:
    if actor.user_id != user_id:
        actor.require(Permission.USERS_READ)
    found = _load(conn, [user_id])
    if not found:
        raise NotFound(f"no user {user_id}")
    return found[0]


def listing(conn: Connection, actor: Principal, cursor: str | None, limit: int) -> Page[User]:
    actor.require(Permission.USERS_READ)
    after = decode_cursor(cursor)
    if after is not None and not (isinstance(after, int) and after < 2**31):  # a user id
        raise InvalidInput.on("cursor", "not a cursor this server issued")
    q = sa.select(users.c.id).order_by(users.c.id).limit(check_limit(limit) + 1)
    if after is not None:
        q = q.where(users.c.id > after)
    ids = list(conn.execute(q).scalars())
    more = len(ids) > limit
    page = _load(conn, ids[:limit])
    return Page(items=page, next_cursor=encode_cursor(page[-1].id) if more else None)


def _set_scopes(conn: Connection, user_id: int, roles: list[Role] | None,
                zone_ids: list[str] | None) -> None:
    if roles is not None:
        conn.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
        conn.execute(user_roles.insert(), [{"user_id": user_id, "role": r.value}
                                           for r in sorted(set(roles))])
    if zone_ids is not None:
        conn.execute(user_zones.delete().where(user_zones.c.user_id == user_id))
        if zone_ids:
            conn.execute(user_zones.insert(), [{"user_id": user_id, "zone_id": z}
                                               for z in sorted(set(zone_ids))])


def _check_grant(actor: Principal, all_zones: bool, zone_ids: list[str]) -> None:
    """Nobody grants zones they do not hold: a scoped administrator cannot widen any scope."""
    if actor.all_zones:
        return
    if all_zones:
        raise Forbidden("only a user with every zone can grant every zone")
    beyond = sorted(set(zone_ids) - actor.zone_ids)
    if beyond:
        raise Forbidden(f"you cannot grant zones you do not hold: {', '.join(beyond)}")


def create(conn: Connection, actor: Principal, data: UserCreate, hasher: PasswordHasher) -> User:
    actor.require(Permission.USERS_WRITE)
    _check_grant(actor, data.all_zones, data.zone_ids)
    check_password_policy(data.password)
    _check_refs(conn, data.agency_id, data.zone_ids)
    if conn.execute(sa.select(users.c.id).where(
        sa.func.lower(users.c.username) == data.username.lower())).first():
        raise Conflict(f"username {data.username!r} is taken", [])
    now = utcnow()
    user_id = conn.execute(users.insert().values(
        username=data.username, full_name=data.full_name, email=data.email,
        agency_id=data.agency_id, all_zones=data.all_zones, active=True,
        password_hash=hasher.hash(data.password), password_changed_at=now,
        created_at=now, updated_at=now,
    ).returning(users.c.id)).scalar_one()
    _set_scopes(conn, user_id, data.roles, data.zone_ids)
    user = _load(conn, [user_id])[0]
    audit.record(conn, actor, "user.create", f"user/{data.username}", detail=_public(user))
    return user


def update(conn: Connection, actor: Principal, user_id: int, patch: UserPatch,
           hasher: PasswordHasher) -> User:
    own = actor.user_id == user_id
    if not (own and patch.model_fields_set <= {"password", "current_password"}):
        actor.require(Permission.USERS_WRITE)
        # The target's scope, before and after, must lie within the actor's own.
        target = get(conn, actor, user_id)
        if not actor.all_zones and (target.all_zones or set(target.zone_ids) - actor.zone_ids):
            raise Forbidden("this user holds zones you do not: ask a user with every zone")
        _check_grant(actor, bool(patch.all_zones), patch.zone_ids or [])
    before = get(conn, actor, user_id)
    if own and patch.password is not None:
        # A stolen session must not be enough to take the account over.
        stored = conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id))
        if not verify_password(hasher, stored.scalar_one(), patch.current_password or ""):
            raise InvalidInput.on("current_password", "give your current password to change it")
    _check_refs(conn, patch.agency_id, patch.zone_ids)
    changes = patch.model_dump(exclude_unset=True,
                               exclude={"roles", "zone_ids", "password", "current_password"})
    for key, value in changes.items():
        if value is None and key != "email":
            raise InvalidInput.on(key, "may not be null")
    now = utcnow()
    if patch.password is not None:
        check_password_policy(patch.password)
        changes["password_hash"] = hasher.hash(patch.password)
        changes["password_changed_at"] = now
    conn.execute(users.update().where(users.c.id == user_id).values(updated_at=now, **changes))
    _set_scopes(conn, user_id, patch.roles, patch.zone_ids)
    after = _load(conn, [user_id])[0]
    revoked = 0
    if patch.password is not None or after.active is False:
        revoked = revoke_all(conn, user_id)  # a new password or a disabled account ends sessions
    diff = {k: v for k, v in _public(after).items() if _public(before).get(k) != v}
    if patch.password is not None:
        diff["password"] = "changed"
    audit.record(conn, actor, "user.update", f"user/{after.username}",
                 detail={"changes": diff, "sessions_revoked": revoked})
    return after


def _public(user: User) -> dict[str, Any]:
    return user.model_dump(mode="json", exclude={"created_at", "updated_at", "password_changed_at"})
