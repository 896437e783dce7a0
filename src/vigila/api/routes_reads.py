"""Plate reads in: the generic JSON ingest and the vendor adapters' endpoints."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reads"])
