"""What a request handler needs: the installation's state, the actor, the purpose."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import unquote

from argon2 import PasswordHasher
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from vigila.access import Authenticator, Permission, Principal, Purpose
from vigila.alarms import AlarmDispatcher
from vigila.core import EventBus, InvalidInput, Settings, Unauthenticated
from vigila.reads import Ingest
from vigila.store import Database


@dataclass
class Installation:
    settings: Settings
    db: Database
    auth: Authenticator
    hasher: PasswordHasher
    bus: EventBus
    metrics: CollectorRegistry
    alarms: AlarmDispatcher  # alarms to the console's streams, MQTT and webhooks
    ingest: Ingest  # plate reads in: one per installation, it holds the hotlist matcher


def installation(request: Request) -> Installation:
    state: Installation = request.app.state.vigila
    return state


_bearer = HTTPBearer(auto_error=False, description="the token from POST /api/auth/login")


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def principal(
    request: Request,
    creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
    inst: Installation = Depends(installation),
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise Unauthenticated("log in first: Authorization: Bearer <token>")
    return inst.auth.resolve(creds.credentials, client_of(request))


def bearer_token(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    if creds is None:
        raise Unauthenticated("log in first: Authorization: Bearer <token>")
    return creds.credentials


def _purpose(vigila_purpose: str | None, vigila_reference: str | None) -> Purpose:
    """Headers carry the purpose percent-encoded: HTTP headers are not UTF-8."""
    return Purpose.parse(_header_text(vigila_purpose, "Vigila-Purpose"),
                         _header_text(vigila_reference, "Vigila-Reference"))


def _header_text(value: str | None, header: str) -> str:
    """Percent-decoded UTF-8; raw UTF-8 (read by the server as Latin-1) is taken as meant."""
    if not value:
        return ""
    with suppress(UnicodeEncodeError, UnicodeDecodeError):  # else truly Latin-1: keep it
        value = value.encode("latin-1").decode("utf-8")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidInput.on(header, "percent-encode UTF-8 text") from exc


@dataclass(frozen=True)
class Consultation:
    """A read of personal data: who, under which permission, and why."""

    who: Principal
    why: Purpose


def consultation(permission: Permission) -> Callable[..., Consultation]:
    """Dependency: the permission is checked first, then the purpose is asked for."""

    def dependency(request: Request, who: Principal = Depends(principal),
                   vigila_purpose: str | None = Header(default=None, description=(
                       "why personal data is read (percent-encoded UTF-8)")),
                   vigila_reference: str | None = Header(default=None, description=(
                       "the case, file or request reference"))) -> Consultation:
        who.require(permission)
        return Consultation(who, _purpose(vigila_purpose, vigila_reference))

    return dependency
