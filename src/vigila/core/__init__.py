"""Shared foundations: settings, time, errors, the event bus."""

from vigila.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PurposeRequired,
    TooManyAttempts,
    Unauthenticated,
    UnsupportedMediaType,
    VigilaError,
)
from vigila.core.events import Event, EventBus
from vigila.core.settings import Settings
from vigila.core.timeutil import iso, parse_instant, utcnow

__all__ = [
    "Conflict",
    "Event",
    "EventBus",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PurposeRequired",
    "Settings",
    "TooManyAttempts",
    "Unauthenticated",
    "UnsupportedMediaType",
    "VigilaError",
    "iso",
    "parse_instant",
    "utcnow",
]
