"""Every plate read against every active hotlist, in memory, exactly and by look-alike.

Each list is a dict from `lookalike_key` to its entries with that key: one lookup per list
finds the exact entry and, for a list whose policy allows it, the entries one OCR
look-alike away (the recipe is in `vigila.plates.lookalike`). A read that matches nothing,
nearly every read, costs its normalisation, its key and one dict lookup per list.

Lists reload one at a time when their `revision` changes: `refresh()` costs one small
query when nothing changed, so the ingest may call it as often as it likes. A reload
builds the new dict aside and swaps it in, so `match` never waits and never sees half a
list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.hotlists.models import HotlistKind, LookalikePolicy
from vigila.hotlists.tables import hotlist_entries, hotlists
from vigila.plates import CONFUSIONS, Confusions, normalise
from vigila.store import Database


@dataclass(frozen=True, slots=True)
class Hit:
    """A read that matches a hotlist entry; `distance` 0 is exact, 1 one look-alike."""

    hotlist_id: str
    hotlist_name: str
    kind: HotlistKind
    agency_id: str
    plate: str  # as listed
    read: str  # as read, normalised
    distance: int
    priority: int
    reason: str | None
    country: str | None
    expires_at: datetime | None


# plate, priority (the list's when the entry names none), expiry (epoch s), reason, country
_Entry = tuple[str, int, float | None, str | None, str | None]
# A key holds one entry, or, when look-alikes of each other are both listed, a list.
_Bucket = _Entry | list[_Entry]


@dataclass(frozen=True, slots=True)
class _List:
    id: str
    name: str
    kind: HotlistKind
    agency_id: str
    fuzzy: bool
    revision: int
    index: dict[str, _Bucket]
    entries: int


def hits_in(lists: Iterable[_List], plate: str, key: str, now: float,
            confusions: Confusions = CONFUSIONS) -> list[Hit]:
    """The hits of `plate` (normalised, with its `key`) in `lists`, highest priority first."""
    hits: list[Hit] = []
    for lst in lists:
        bucket = lst.index.get(key)
        if bucket is None:
            continue
        entries: Iterable[_Entry] = bucket if isinstance(bucket, list) else (bucket,)
        for listed, priority, expires, reason, country in entries:
            if expires is not None and expires <= now:
                continue
            if listed == plate:
                distance = 0
            elif lst.fuzzy and confusions.distance(plate, listed) == 1:
                distance = 1
            else:
                continue
            hits.append(Hit(lst.id, lst.name, lst.kind, lst.agency_id, listed, plate, distance,
                            priority, reason, country,
                            None if expires is None else datetime.fromtimestamp(expires, UTC)))
    hits.sort(key=lambda h: (-h.priority, h.distance, h.hotlist_id, h.plate))
    return hits


def build_list(meta: Mapping[Any, Any],
               rows: Iterable[Sequence[Any]],
               now: datetime, confusions: Confusions = CONFUSIONS) -> _List:
    """A list's index from its entries (plate, key, priority, expiry, reason, country)."""
    default: int = meta["priority"]
    rekey = confusions is not CONFUSIONS  # stored keys are the default policy's
    index: dict[str, _Bucket] = {}
    reasons: dict[str, str] = {}  # a national list repeats a few reasons a million times
    count = 0
    for plate, key, priority, expires, reason, country in rows:
        if expires is not None and expires <= now:
            continue
        if reason is not None:
            reason = reasons.setdefault(reason, reason)
        entry: _Entry = (plate, default if priority is None else priority,
                         None if expires is None else expires.timestamp(), reason, country)
        count += 1
        if rekey:
            key = confusions.key(plate)
        found = index.get(key)
        if found is None:
            index[key] = entry
        elif isinstance(found, list):
            found.append(entry)
        else:
            index[key] = [found, entry]
    return _List(meta["id"], meta["name"], HotlistKind(meta["kind"]), meta["agency_id"],
                 meta["policy"] == LookalikePolicy.ONE_SUBSTITUTION.value, meta["revision"],
                 index, count)


def load_list(conn: Connection, meta: Mapping[Any, Any], now: datetime,
              confusions: Confusions = CONFUSIONS) -> _List:
    e = hotlist_entries.c
    rows = conn.execute(
        sa.select(e.plate, e.lookalike_key, e.priority, e.expires_at, e.reason, e.country)
        .where(e.hotlist_id == meta["id"],
               sa.or_(e.expires_at.is_(None), e.expires_at > now)))
    return build_list(meta, rows, now, confusions)


class HotlistMatcher:
    """The active hotlists in memory; `match` a read, `refresh` after lists change."""

    def __init__(self, db: Database, confusions: Confusions = CONFUSIONS) -> None:
        self.db = db
        self.confusions = confusions
        self._lists: tuple[_List, ...] = ()
        self._lock = threading.Lock()

    @property
    def entries(self) -> int:
        return sum(lst.entries for lst in self._lists)

    @property
    def revisions(self) -> dict[str, int]:
        return {lst.id: lst.revision for lst in self._lists}

    def refresh(self) -> list[str]:
        """Reload the lists that changed, drop the inactive ones; returns the ids reloaded."""
        with self._lock:
            now = datetime.now(UTC)
            current = {lst.id: lst for lst in self._lists}
            reloaded: list[str] = []
            kept: list[_List] = []
            with self.db.read() as conn:
                metas = conn.execute(sa.select(hotlists).where(hotlists.c.active.is_(True))
                                     .order_by(hotlists.c.id)).mappings().all()
                for meta in metas:
                    have = current.get(meta["id"])
                    if have is not None and have.revision == meta["revision"]:
                        kept.append(have)
                        continue
                    kept.append(load_list(conn, meta, now, self.confusions))
                    reloaded.append(meta["id"])
            changed = reloaded or len(kept) != len(self._lists)
            if changed:
                self._lists = tuple(kept)
            return reloaded

    def match(self, plate_text: str, at: datetime | None = None) -> list[Hit]:
        """Hits for a read, highest priority first, exact before look-alike.

        Expired entries never hit. Raises InvalidInput if `plate_text` is not a plate text.
        """
        plate = normalise(plate_text)
        key = self.confusions.key(plate)
        lists = self._lists
        for lst in lists:  # the common case, a miss, without building anything
            if key in lst.index:
                break
        else:
            return []
        now = time.time() if at is None else at.timestamp()
        return hits_in(lists, plate, key, now, self.confusions)
