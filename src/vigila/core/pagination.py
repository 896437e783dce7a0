"""Cursor pagination: opaque cursors over a stable key, never offsets."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Generic, TypeVar

from pydantic import BaseModel

from vigila.core.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput.on("cursor", "not a cursor this server issued") from exc
    # This server issues text ids and ids or sequence numbers of a 64-bit column.
    if isinstance(key, bool) or not ((isinstance(key, int) and 0 <= key < 2**63)
                                     or (isinstance(key, str) and "\x00" not in key)):
        raise InvalidInput.on("cursor", "not a cursor this server issued")
    return key


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.on("limit", f"between 1 and {MAX_LIMIT}")
    return limit
