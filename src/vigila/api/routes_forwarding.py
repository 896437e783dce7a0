"""The upstream forwarding queue: its state and the dead letters."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["forwarding"])
