"""Agencies, zones and devices: create, read, update, retire, import, export.

Every read goes through the actor's zone clause, so a scoped user cannot reach
another zone's device by listing, filtering or id; a hidden device is "not
found", which tells nothing of its existence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from vigila.access import audit
from vigila.access.principal import Principal
from vigila.access.roles import Permission
from vigila.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from vigila.core.events import Event, EventBus
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.timeutil import utcnow
from vigila.registry.geo import check_zone_geometry
from vigila.registry.models import (
    PLATE_READING,
    Agency,
    AgencyIn,
    AgencyPatch,
    Device,
    DeviceIn,
    DeviceKind,
    DevicePatch,
    DeviceStatus,
    ImportReport,
    Zone,
    ZoneIn,
    ZonePatch,
)
from vigila.registry.tables import agencies, devices, zones


def field_errors(exc: ValidationError, prefix: str = "",
                 row: int | None = None) -> list[FieldError]:
    """Pydantic's errors as (field, message) pairs a person can act on."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(row)"
        out.append(FieldError(f"{prefix}{loc}", err["msg"], row))
    return out


def _changed(before: BaseModel, after: BaseModel) -> dict[str, Any]:
    b, a = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: {"from": b.get(k), "to": v} for k, v in a.items()
            if b.get(k) != v and k != "updated_at"}


# --- agencies --------------------------------------------------------------

def list_agencies(conn: Connection, actor: Principal) -> list[Agency]:
    actor.require(Permission.REGISTRY_READ)
    rows = conn.execute(sa.select(agencies).order_by(agencies.c.id)).mappings()
    return [Agency.model_validate(dict(r)) for r in rows]


def get_agency(conn: Connection, actor: Principal, agency_id: str) -> Agency:
    actor.require(Permission.REGISTRY_READ)
    row = conn.execute(sa.select(agencies).where(agencies.c.id == agency_id)).mappings().first()
    if row is None:
        raise NotFound(f"no agency {agency_id!r}")
    return Agency.model_validate(dict(row))


def create_agency(conn: Connection, actor: Principal, data: AgencyIn) -> Agency:
    actor.require(Permission.REGISTRY_WRITE)
    if conn.execute(sa.select(agencies.c.id).where(agencies.c.id == data.id)).first():
        raise Conflict(f"agency {data.id!r} exists", [FieldError("id", "already exists")])
    now = utcnow()
    conn.execute(agencies.insert().values(**data.model_dump(), created_at=now, updated_at=now))
    audit.record(conn, actor, "agency.create", f"agency/{data.id}",
                 detail=data.model_dump(mode="json"))
    return get_agency(conn, actor, data.id)


def update_agency(conn: Connection, actor: Principal, agency_id: str,
                  patch: AgencyPatch) -> Agency:
    actor.require(Permission.REGISTRY_WRITE)
    before = get_agency(conn, actor, agency_id)
    values = _non_null(patch, "agency")
    conn.execute(agencies.update().where(agencies.c.id == agency_id)
                 .values(**values, updated_at=utcnow()))
    after = get_agency(conn, actor, agency_id)
    audit.record(conn, actor, "agency.update", f"agency/{agency_id}",
                 detail={"changes": _changed(before, after)})
    return after


def _non_null(patch: BaseModel, what: str) -> dict[str, Any]:
    values = patch.model_dump(exclude_unset=True)
    for key, value in values.items():
        if value is None:
            raise InvalidInput.on(key, f"the {what}'s {key} cannot be removed")
    return values


# --- zones -----------------------------------------------------------------

def list_zones(conn: Connection, actor: Principal) -> list[Zone]:
    actor.require(Permission.REGISTRY_READ)
    rows = conn.execute(
        sa.select(zones).where(actor.zone_clause(zones.c.id)).order_by(zones.c.id)
    ).mappings()
    return [Zone.model_validate(dict(r)) for r in rows]


def get_zone(conn: Connection, actor: Principal, zone_id: str) -> Zone:
    actor.require(Permission.REGISTRY_READ)
    row = conn.execute(
        sa.select(zones).where(zones.c.id == zone_id, actor.zone_clause(zones.c.id))
    ).mappings().first()
    if row is None:
        raise NotFound(f"no zone {zone_id!r}")
    return Zone.model_validate(dict(row))


def _require_every_zone(actor: Principal) -> None:
    # Zones define everyone's scope: only someone who holds them all may add or remove one.
    if not actor.all_zones:
        raise Forbidden("creating or deleting zones needs a user with every zone")


def create_zone(conn: Connection, actor: Principal, data: ZoneIn) -> Zone:
    actor.require(Permission.REGISTRY_WRITE)
    _require_every_zone(actor)
    geometry = check_zone_geometry(data.geometry)
    if conn.execute(sa.select(zones.c.id).where(zones.c.id == data.id)).first():
        raise Conflict(f"zone {data.id!r} exists", [FieldError("id", "already exists")])
    now = utcnow()
    conn.execute(zones.insert().values(
        id=data.id, name=data.name, kind=data.kind.value, geometry=geometry,
        created_at=now, updated_at=now))
    audit.record(conn, actor, "zone.create", f"zone/{data.id}",
                 detail={"name": data.name, "kind": data.kind.value})
    return get_zone(conn, actor, data.id)


def update_zone(conn: Connection, actor: Principal, zone_id: str, patch: ZonePatch) -> Zone:
    actor.require(Permission.REGISTRY_WRITE)
    before = get_zone(conn, actor, zone_id)
    values = _non_null(patch, "zone")
    if "geometry" in values:
        values["geometry"] = check_zone_geometry(values["geometry"])
    conn.execute(zones.update().where(zones.c.id == zone_id).values(**values, updated_at=utcnow()))
    after = get_zone(conn, actor, zone_id)
    changes = _changed(before, after)
    if "geometry" in changes:
        changes["geometry"] = "changed"  # the polygon itself is in the zone, not the log
    audit.record(conn, actor, "zone.update", f"zone/{zone_id}", detail={"changes": changes})
    return after


def delete_zone(conn: Connection, actor: Principal, zone_id: str) -> None:
    from vigila.access.tables import user_zones  # users belong to access, not here

    actor.require(Permission.REGISTRY_WRITE)
    _require_every_zone(actor)
    get_zone(conn, actor, zone_id)
    used = conn.execute(sa.select(sa.func.count()).where(devices.c.zone_id == zone_id)).scalar()
    granted = conn.execute(
        sa.select(sa.func.count()).where(user_zones.c.zone_id == zone_id)).scalar()
    if used or granted:
        raise Conflict(f"zone {zone_id!r} is in use by {used} devices and {granted} user grants")
    conn.execute(zones.delete().where(zones.c.id == zone_id))
    audit.record(conn, actor, "zone.delete", f"zone/{zone_id}")


# --- devices ---------------------------------------------------------------

def mask_url(url: str | None) -> str | None:
    """Hide a stream password from everyone but administrators."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _device(row: Any, actor: Principal) -> Device:
    device = Device.model_validate(dict(row))
    if not actor.can(Permission.REGISTRY_WRITE):
        device.main_stream_url = mask_url(device.main_stream_url)
        device.sub_stream_url = mask_url(device.sub_stream_url)
    return device


@dataclass(frozen=True)
class DeviceFilter:
    kind: DeviceKind | None = None
    status: DeviceStatus | None = None
    zone_id: str | None = None
    agency_id: str | None = None
    recording_server_id: str | None = None
    text: str | None = None  # in id or name
    include_retired: bool = False

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        c: list[sa.ColumnElement[bool]] = []
        if self.kind:
            c.append(devices.c.kind == self.kind.value)
        if self.status:
            c.append(devices.c.status == self.status.value)
        elif not self.include_retired:
            c.append(devices.c.status != DeviceStatus.RETIRED.value)
        for column, value in ((devices.c.zone_id, self.zone_id),
                              (devices.c.agency_id, self.agency_id),
                              (devices.c.recording_server_id, self.recording_server_id)):
            if value:
                c.append(column == value)
        if self.text:
            text = self.text.lower()
            c.append(sa.or_(sa.func.lower(devices.c.id).contains(text, autoescape=True),
                            sa.func.lower(devices.c.name).contains(text, autoescape=True)))
        return c


def list_devices(conn: Connection, actor: Principal, flt: DeviceFilter,
                 cursor: str | None = None, limit: int = 100) -> Page[Device]:
    actor.require(Permission.REGISTRY_READ)
    check_limit(limit)
    after = decode_cursor(cursor)
    q = sa.select(devices).where(actor.zone_clause(devices.c.zone_id), *flt.clauses())
    if after is not None:
        q = q.where(devices.c.id > str(after))
    rows = list(conn.execute(q.order_by(devices.c.id).limit(limit + 1)).mappings())
    items = [_device(r, actor) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def iter_devices(conn: Connection, actor: Principal, flt: DeviceFilter) -> Iterable[Device]:
    actor.require(Permission.REGISTRY_READ)
    q = sa.select(devices).where(actor.zone_clause(devices.c.zone_id), *flt.clauses())
    for row in conn.execute(q.order_by(devices.c.id)).mappings():
        yield _device(row, actor)


def get_device(conn: Connection, actor: Principal, device_id: str) -> Device:
    actor.require(Permission.REGISTRY_READ)
    row = conn.execute(
        sa.select(devices).where(devices.c.id == device_id, actor.zone_clause(devices.c.zone_id))
    ).mappings().first()
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    return _device(row, actor)


class _Refs:
    """What the rows of one create or import may refer to, as the actor sees it.

    Zones and servers outside the actor's scope are left out, so naming one gets the same
    answer as naming one that does not exist. Device ids are global keys: a clash with a
    hidden device is a conflict, which says only that the id is taken.
    """

    def __init__(self, conn: Connection, actor: Principal) -> None:
        self.zones = set(conn.execute(
            sa.select(zones.c.id).where(actor.zone_clause(zones.c.id))).scalars())
        self.agencies = set(conn.execute(sa.select(agencies.c.id)).scalars())
        self.servers = set(conn.execute(sa.select(devices.c.id).where(
            devices.c.kind == DeviceKind.RECORDING_SERVER.value,
            devices.c.status != DeviceStatus.RETIRED.value,
            actor.zone_clause(devices.c.zone_id))).scalars())
        self.devices = set(conn.execute(sa.select(devices.c.id)).scalars())


def _check_device(actor: Principal, d: dict[str, Any], refs: _Refs) -> list[FieldError]:
    """Rules that cross fields or rows; `d` holds a whole device after the change."""
    errors = []
    kind = DeviceKind(d["kind"])
    if d.get("zone_id") and d["zone_id"] not in refs.zones:
        errors.append(FieldError("zone_id", f"no zone {d['zone_id']!r} among yours"))
    elif not actor.sees_zone(d.get("zone_id")):
        errors.append(FieldError("zone_id", "a device without a zone needs every zone"))
    if d.get("agency_id") not in refs.agencies:
        errors.append(FieldError("agency_id", f"no agency {d.get('agency_id')!r}"))
    server = d.get("recording_server_id")
    if server is not None:
        if kind == DeviceKind.RECORDING_SERVER:
            errors.append(FieldError("recording_server_id", "a recording server records itself"))
        elif server not in refs.servers:
            errors.append(FieldError("recording_server_id",
                                     f"no active recording server {server!r}"))
    if d.get("anpr_vendor") and kind not in PLATE_READING:
        errors.append(FieldError("anpr_vendor", f"only plate-reading devices, not a {kind.value}"))
    if kind == DeviceKind.RECORDING_SERVER:
        errors += [FieldError(f, "a recording server has no stream")
                   for f in ("main_stream_url", "sub_stream_url") if d.get(f)]
    if d.get("status") == DeviceStatus.RETIRED.value:
        errors.append(FieldError("status", "retire a device with the retire action"))
    return errors


def _row_values(data: DeviceIn) -> dict[str, Any]:
    return data.model_dump(mode="python")


def create_device(conn: Connection, actor: Principal, data: DeviceIn,
                  bus: EventBus | None = None) -> Device:
    actor.require(Permission.REGISTRY_WRITE)
    refs = _Refs(conn, actor)
    if data.id in refs.devices:
        raise Conflict(f"device {data.id!r} exists", [FieldError("id", "already exists")])
    values = _row_values(data)
    errors = _check_device(actor, values, refs)
    if errors:
        raise InvalidInput(f"{errors[0].field}: {errors[0].message}", errors)
    _insert_devices(conn, [values])
    audit.record(conn, actor, "device.create", f"device/{data.id}",
                 detail=data.model_dump(mode="json", exclude={"main_stream_url", "sub_stream_url"}))
    device = get_device(conn, actor, data.id)
    _publish(bus, "registry.device.created", device)
    return device


def _insert_devices(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    now = utcnow()
    # Servers first, so rows of one import may name a server defined further down.
    ordered = sorted(rows, key=lambda r: r["kind"] != DeviceKind.RECORDING_SERVER.value)
    for chunk_start in range(0, len(ordered), 500):
        chunk = [dict(r, created_at=now, updated_at=now, retired_at=None)
                 for r in ordered[chunk_start:chunk_start + 500]]
        conn.execute(devices.insert(), chunk)


def update_device(conn: Connection, actor: Principal, device_id: str, patch: DevicePatch,
                  bus: EventBus | None = None) -> Device:
    actor.require(Permission.REGISTRY_WRITE)
    before = get_device(conn, actor, device_id)
    if before.status == DeviceStatus.RETIRED:
        raise Conflict(f"device {device_id!r} is retired")
    changes = patch.model_dump(exclude_unset=True, mode="python")
    for key in ("name", "lat", "lon", "agency_id", "status"):
        if key in changes and changes[key] is None:
            raise InvalidInput.on(key, "cannot be removed")
    merged = {**before.model_dump(mode="python"), **changes}
    merged["kind"] = before.kind.value
    # Only what this patch changes is judged: an unchanged reference the actor cannot see
    # (a server assigned by someone with more zones) is not theirs to answer for.
    errors = [e for e in _check_device(actor, merged, _Refs(conn, actor)) if e.field in changes]
    if errors:
        raise InvalidInput(f"{errors[0].field}: {errors[0].message}", errors)
    conn.execute(devices.update().where(devices.c.id == device_id)
                 .values(**changes, updated_at=utcnow()))
    after = get_device(conn, actor, device_id)
    diff = _changed(before, after)
    for secret in ("main_stream_url", "sub_stream_url"):
        if secret in diff:
            diff[secret] = "changed"
    audit.record(conn, actor, "device.update", f"device/{device_id}", detail={"changes": diff})
    _publish(bus, "registry.device.updated", after)
    return after


def retire_device(conn: Connection, actor: Principal, device_id: str, reason: str | None,
                  bus: EventBus | None = None) -> Device:
    """Retired, not deleted: its recordings and reads keep pointing at it."""
    actor.require(Permission.REGISTRY_WRITE)
    before = get_device(conn, actor, device_id)
    if before.status == DeviceStatus.RETIRED:
        raise Conflict(f"device {device_id!r} is already retired")
    if before.kind == DeviceKind.RECORDING_SERVER:
        assigned = conn.execute(sa.select(sa.func.count()).where(
            devices.c.recording_server_id == device_id,
            devices.c.status != DeviceStatus.RETIRED.value)).scalar()
        if assigned:
            raise Conflict(f"{assigned} devices still record on {device_id!r}: move them first")
    now = utcnow()
    conn.execute(devices.update().where(devices.c.id == device_id).values(
        status=DeviceStatus.RETIRED.value, retired_at=now, updated_at=now))
    audit.record(conn, actor, "device.retire", f"device/{device_id}",
                 detail={"reason": reason, "previous_status": before.status.value})
    after = get_device(conn, actor, device_id)
    _publish(bus, "registry.device.retired", after)
    return after


def _publish(bus: EventBus | None, topic: str, device: Device) -> None:
    if bus is not None:
        bus.publish(Event(topic, {"id": device.id, "kind": device.kind.value,
                                  "zone_id": device.zone_id, "status": device.status.value}))


def import_devices(conn: Connection, actor: Principal,
                   rows: Iterable[tuple[int, dict[str, Any] | FieldError]],
                   *, good_rows: bool, source: str) -> ImportReport:
    """Validate every row, then insert all, or only the good ones if asked; never half a row.

    `rows` pairs each row's number (as the user sees it in the file) with its fields.
    """
    actor.require(Permission.REGISTRY_WRITE)
    refs = _Refs(conn, actor)
    parsed: list[tuple[int, dict[str, Any]]] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    total = 0
    for number, raw in rows:
        total += 1
        if isinstance(raw, FieldError):
            errors.append(raw)
            continue
        try:
            values = _row_values(DeviceIn.model_validate(raw))
        except ValidationError as exc:
            errors.extend(field_errors(exc, row=number))
            continue
        parsed.append((number, values))
        if values["kind"] == DeviceKind.RECORDING_SERVER.value:
            refs.servers.add(values["id"])
    good: list[dict[str, Any]] = []
    for number, values in parsed:
        row_errors = _check_device(actor, values, refs)
        if values["id"] in refs.devices:
            row_errors.append(FieldError("id", f"device {values['id']!r} already exists"))
        elif values["id"] in seen:
            row_errors.append(FieldError("id", f"{values['id']!r} appears twice in the file"))
        seen.add(values["id"])
        if row_errors:
            errors.extend(FieldError(e.field, e.message, number) for e in row_errors)
        else:
            good.append(values)
    rejected = total - len(good)
    if total == 0:
        raise InvalidInput.on("file", "no rows to import")
    commit = not errors or good_rows
    if commit and good:
        _insert_devices(conn, good)
    report = ImportReport(rows=total, imported=len(good) if commit else 0, rejected=rejected,
                          committed=commit,
                          errors=[e.as_dict() for e in sorted(errors, key=lambda e: e.row or 0)])
    audit.record(conn, actor, "device.import", f"import/{source}"[:512],
                 outcome="ok" if commit else "rejected",
                 detail={"rows": total, "imported": report.imported, "rejected": rejected,
                         "ids": [g["id"] for g in good] if commit else []})
    return report
