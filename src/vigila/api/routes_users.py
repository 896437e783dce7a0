"""User accounts over HTTP: thin calls into vigila.access.users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from vigila.access import Principal, users
from vigila.api.deps import Installation, installation, principal
from vigila.core.pagination import Page

router = APIRouter(prefix="/api/users", tags=["users"])
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # the column is a 32-bit integer


@router.get("", response_model=Page[users.User])
def list_users(cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> Page[users.User]:
    with inst.db.read() as conn:
        return users.listing(conn, who, cursor, limit)


@router.post("", response_model=users.User, status_code=201)
def create_user(body: users.UserCreate, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> users.User:
    with inst.db.write() as conn:
        return users.create(conn, who, body, inst.hasher)


@router.get("/{user_id}", response_model=users.User)
def get_user(user_id: UserId, who: Principal = Depends(principal),
             inst: Installation = Depends(installation)) -> users.User:
    with inst.db.read() as conn:
        return users.get(conn, who, user_id)


@router.patch("/{user_id}", response_model=users.User)
def update_user(user_id: UserId, body: users.UserPatch, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> users.User:
    with inst.db.write() as conn:
        return users.update(conn, who, user_id, body, inst.hasher)
