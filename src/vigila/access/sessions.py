"""Passwords (argon2id), opaque session tokens, and the failed-login throttle."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from vigila.access import audit
from vigila.access.principal import Principal
from vigila.access.roles import Role
from vigila.access.tables import login_throttle, sessions, user_roles, user_zones, users
from vigila.core.errors import InvalidInput, TooManyAttempts, Unauthenticated
from vigila.core.settings import Settings
from vigila.core.timeutil import utcnow
from vigila.store import Database

MIN_PASSWORD = 12


def hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=2,
        type=Type.ID,
    )


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput.on("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidInput.on("password", "at most 1024 characters")


def verify_password(ph: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return ph.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    # Tokens are 256 random bits: a fast hash suffices, and a stolen table yields no token.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedSession:
    token: str
    expires_at: datetime
    principal: Principal


class Authenticator:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher(settings)
        # Verified against when the user does not exist, so timing does not tell.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def login(self, username: str, password: str, client: str | None) -> IssuedSession:
        now = utcnow()
        # Per name and client: a wrong guess from elsewhere cannot lock the control room out.
        key = f"user:{username.strip().lower()}|{client or '-'}"[:160]
        with self.db.write() as conn:
            throttle = conn.execute(
                sa.select(login_throttle).where(login_throttle.c.key == key)
            ).first()
            if throttle and throttle.locked_until and throttle.locked_until > now:
                wait = int((throttle.locked_until - now).total_seconds()) + 1
                audit.record(conn, None, "auth.login", f"user/{username[:64]}",
                             outcome="throttled", actor_name=username[:128], client=client)
                locked = TooManyAttempts(f"too many failed logins; retry in {wait} s", wait)
            else:
                locked = None
        if locked:
            raise locked

        row = None
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users).where(sa.func.lower(users.c.username) == username.strip().lower())
            ).first()
        ok = self._verify(row.password_hash if row else self._dummy, password)
        ok = ok and row is not None and bool(row.active)

        with self.db.write() as conn:
            if not ok:
                self._fail(conn, key, throttle.failures if throttle else 0, now)
                audit.record(conn, None, "auth.login", f"user/{username[:64]}",
                             outcome="failed", actor_name=username[:128], client=client)
            else:
                assert row is not None
                conn.execute(login_throttle.delete().where(login_throttle.c.key == key))
                token = secrets.token_urlsafe(32)
                expires = now + timedelta(hours=self.settings.session_hours)
                conn.execute(sessions.insert().values(
                    token_hash=token_digest(token), user_id=row.id, created_at=now,
                    expires_at=expires, client=client))
                principal = load_principal(conn, row.id, client)
                audit.record(conn, principal, "auth.login", f"user/{row.username}",
                             client=client)
        if not ok:
            raise Unauthenticated("wrong username or password")
        return IssuedSession(token, expires, principal)

    def _verify(self, stored: str, password: str) -> bool:
        return verify_password(self.hasher, stored, password)

    def _fail(self, conn: Connection, key: str, failures: int, now: datetime) -> None:
        failures += 1
        over = failures - self.settings.login_max_failures
        locked_until = None
        if over >= 0:
            lock = min(self.settings.login_lock_seconds * 2 ** min(over, 16),
                       self.settings.login_lock_max_seconds)
            locked_until = now + timedelta(seconds=lock)
        values = {"failures": failures, "locked_until": locked_until, "last_failure_at": now}
        updated = conn.execute(
            login_throttle.update().where(login_throttle.c.key == key).values(**values)
        ).rowcount
        if not updated:
            conn.execute(login_throttle.insert().values(key=key, **values))

    def resolve(self, token: str, client: str | None) -> Principal:
        """The principal behind a bearer token, or Unauthenticated."""
        now = utcnow()
        with self.db.read() as conn:
            s = conn.execute(
                sa.select(sessions.c.user_id, sessions.c.expires_at, sessions.c.revoked_at)
                .where(sessions.c.token_hash == token_digest(token))
            ).first()
            if s is None or s.revoked_at is not None or s.expires_at <= now:
                raise Unauthenticated("session missing, expired or revoked: log in again")
            return load_principal(conn, s.user_id, client)

    def logout(self, token: str, principal: Principal) -> None:
        with self.db.write() as conn:
            conn.execute(
                sessions.update()
                .where(sessions.c.token_hash == token_digest(token))
                .values(revoked_at=utcnow())
            )
            audit.record(conn, principal, "auth.logout", f"user/{principal.username}")


def load_principal(conn: Connection, user_id: int, client: str | None) -> Principal:
    user = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if user is None or not user.active:
        raise Unauthenticated("account disabled")
    roles = conn.execute(sa.select(user_roles.c.role).where(user_roles.c.user_id == user_id))
    zones = conn.execute(sa.select(user_zones.c.zone_id).where(user_zones.c.user_id == user_id))
    return Principal(
        user_id=user.id,
        username=user.username,
        agency_id=user.agency_id,
        roles=frozenset(Role(r) for (r,) in roles),
        all_zones=bool(user.all_zones),
        zone_ids=frozenset(z for (z,) in zones),
        client=client,
    )


def revoke_all(conn: Connection, user_id: int) -> int:
    return conn.execute(
        sessions.update()
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
