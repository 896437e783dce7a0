"""Log in, log out, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from vigila.access import Principal
from vigila.access.roles import Permission, Role
from vigila.api.deps import Installation, bearer_token, client_of, installation, principal
from vigila.core.text import NoNul

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Me(BaseModel):
    user_id: int | None
    username: str
    agency_id: str | None
    roles: list[Role]
    permissions: list[Permission]
    all_zones: bool
    zone_ids: list[str]


class SessionOut(BaseModel):
    token: str
    expires_at: datetime
    user: Me


def _me(p: Principal) -> Me:
    return Me(user_id=p.user_id, username=p.username, agency_id=p.agency_id,
              roles=sorted(p.roles), permissions=sorted(p.permissions), all_zones=p.all_zones,
              zone_ids=sorted(p.zone_ids))


@router.post("/login", response_model=SessionOut)
def login(body: Credentials, request: Request,
          inst: Installation = Depends(installation)) -> SessionOut:
    issued = inst.auth.login(body.username, body.password, client_of(request))
    return SessionOut(token=issued.token, expires_at=issued.expires_at, user=_me(issued.principal))


@router.post("/logout", status_code=204)
def logout(token: str = Depends(bearer_token), who: Principal = Depends(principal),
           inst: Installation = Depends(installation)) -> None:
    inst.auth.logout(token, who)


@router.get("/me", response_model=Me)
def me(who: Principal = Depends(principal)) -> Me:
    return _me(who)
