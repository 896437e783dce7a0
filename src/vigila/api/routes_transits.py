"""Investigative search over transits: always with a purpose, audited, inside the user's zones."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["transits"])
