"""Alarms over HTTP: the list, the live stream for the console, the workflow, webhooks."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["alarms"])
