"""The audit trail: an append-only hash chain (D.Lgs. 51/2018 art. 21).

Each entry's hash covers its own fields and the previous entry's hash, so an
altered, removed or inserted row breaks the chain from that row on. Removing
the newest rows leaves a shorter valid chain: `head()` gives the (seq, hash)
to record outside the system, and `verify(expect=...)` checks it is still there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.access.principal import Principal, Purpose
from vigila.access.tables import audit_log
from vigila.core.timeutil import iso, utcnow

GENESIS = "0" * 64
_LOCK_KEY = 7_210_001  # PostgreSQL advisory lock that serialises appends
_HASHED = (
    "seq", "at", "actor", "actor_agency", "action", "resource", "outcome", "detail",
    "purpose", "reference", "recipient", "client",
)


def _digest(prev_hash: str, row: dict[str, Any]) -> str:
    body = {k: row[k] for k in _HASHED}
    at = row["at"]
    body["at"] = iso(at) if isinstance(at, datetime) else at
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def record(
    conn: Connection,
    actor: Principal | None,
    action: str,
    resource: str,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    purpose: Purpose | None = None,
    recipient: str | None = None,
    actor_name: str | None = None,
    client: str | None = None,
) -> int:
    """Append one entry in the caller's write transaction; returns its seq.

    In the caller's transaction so the entry and the change it describes
    commit together or not at all.
    """
    if not conn.get_execution_options().get("vigila_write"):
        raise RuntimeError("audit.record needs a Database.write() transaction")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
    last = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    row: dict[str, Any] = {
        "seq": seq,
        "at": utcnow(),
        "actor": actor_name or (actor.username if actor else "system"),
        "actor_agency": actor.agency_id if actor else None,
        "action": action,
        "resource": resource[:512],
        "outcome": outcome,
        "detail": detail or {},
        "purpose": purpose.text if purpose else None,
        "reference": purpose.reference if purpose else None,
        "recipient": recipient,
        "client": client or (actor.client if actor else None),
    }
    row["prev_hash"] = prev
    row["hash"] = _digest(prev, row)
    conn.execute(audit_log.insert().values(**row))
    return seq


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None
    gaps: int = 0  # in a filtered export: runs of entries not included


def verify_rows(rows: Iterable[dict[str, Any]], start: tuple[int, str] = (0, GENESIS)) -> Verdict:
    """Walk a chain in seq order from `start` (seq, hash); name the first entry where it breaks."""
    (expected_seq, prev), count = (start[0] + 1, start[1]), 0
    for row in rows:
        if row["seq"] != expected_seq:
            what = "removed" if row["seq"] > expected_seq else "out of order or duplicated"
            return Verdict(False, count, expected_seq - 1, prev, expected_seq,
                           f"entry {expected_seq} is missing ({what}); next is {row['seq']}")
        if row["prev_hash"] != prev:
            return Verdict(False, count, row["seq"] - 1, prev, row["seq"],
                           "previous-hash link does not match: an entry before it was "
                           "removed, inserted or altered")
        if _digest(prev, row) != row["hash"]:
            return Verdict(False, count, row["seq"] - 1, prev, row["seq"],
                           "content does not match its hash: the entry was altered")
        prev, expected_seq, count = row["hash"], expected_seq + 1, count + 1
    return Verdict(True, count, expected_seq - 1, prev)


def verify(conn: Connection, expect: tuple[int, str] | None = None) -> Verdict:
    """Verify the stored chain and, given a head recorded earlier, that it is still there."""
    result = conn.execute(
        sa.select(audit_log).order_by(audit_log.c.seq).execution_options(yield_per=2000)
    )
    verdict = verify_rows(dict(r) for r in result.mappings())
    if not verdict.ok or expect is None:
        return verdict
    seq, digest = expect
    if seq > verdict.head_seq:
        return Verdict(False, verdict.entries, verdict.head_seq, verdict.head_hash,
                       verdict.head_seq + 1,
                       f"the chain ends at {verdict.head_seq} but entry {seq} was recorded "
                       "earlier: entries were removed from the end")
    at = conn.execute(sa.select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
    if at != digest:
        return Verdict(False, verdict.entries, verdict.head_seq, verdict.head_hash, seq,
                       "the head recorded earlier differs: the chain was rewritten")
    return verdict


def verify_jsonl(lines: Iterable[str]) -> Verdict:
    """Verify an export offline: the DPO needs only the file.

    Each entry's hash is recomputed from its own content and link; where two entries are
    consecutive, the link between them is checked too. A filtered export has gaps, which
    are counted, not faulted: only the full chain in the database vouches for what is missing.
    """
    prev: dict[str, Any] | None = None
    count = gaps = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            seq, link, digest = int(row["seq"]), row["prev_hash"], row["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            return Verdict(False, count, 0, GENESIS, None, f"line {number} is not an entry: {exc}")
        if prev is not None and seq <= prev["seq"]:
            return Verdict(False, count, prev["seq"], prev["hash"], seq,
                           "entries out of order or duplicated")
        if _digest(link, row) != digest:
            return Verdict(False, count, seq - 1, link, seq,
                           "content does not match its hash: the entry was altered")
        expected_prev = prev["seq"] + 1 if prev is not None else 1
        if seq == expected_prev and link != (prev["hash"] if prev is not None else GENESIS):
            return Verdict(False, count, seq - 1, link, seq,
                           "previous-hash link does not match: an entry was removed, inserted "
                           "or altered")
        gaps += seq != expected_prev
        prev, count = row, count + 1
    if prev is None:
        return Verdict(True, 0, 0, GENESIS)
    return Verdict(True, count, prev["seq"], prev["hash"], gaps=gaps)


def head(conn: Connection) -> tuple[int, str]:
    last = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "."
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0


def _where(q: AuditQuery) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [audit_log.c.seq > q.after_seq]
    if q.actor:
        clauses.append(audit_log.c.actor == q.actor)
    if q.action:
        if q.action.endswith("."):
            clauses.append(audit_log.c.action.startswith(q.action, autoescape=True))
        else:
            clauses.append(audit_log.c.action == q.action)
    if q.since:
        clauses.append(audit_log.c.at >= q.since)
    if q.until:
        clauses.append(audit_log.c.at < q.until)
    return clauses


def as_wire(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["at"] = iso(out["at"])
    return out


def entries(conn: Connection, q: AuditQuery, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(audit_log).where(*_where(q)).order_by(audit_log.c.seq).limit(limit)
    ).mappings()
    return [as_wire(r) for r in rows]


def export_jsonl(conn: Connection, q: AuditQuery) -> Iterator[str]:
    """One JSON object a line, hashes included, so the DPO can re-verify offline."""
    result = conn.execute(
        sa.select(audit_log).where(*_where(q)).order_by(audit_log.c.seq)
        .execution_options(yield_per=2000)
    )
    for r in result.mappings():
        yield json.dumps(as_wire(r), ensure_ascii=False, sort_keys=True) + "\n"
