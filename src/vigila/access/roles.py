"""Roles and what each may do: least privilege, per D.Lgs. 51/2018 art. 25."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"  # control room: live view, map, alarms, camera health
    INVESTIGATOR = "investigator"  # plate search, routes, playback, evidence
    SUPERVISOR = "supervisor"  # oversees operators; releases legal holds
    ADMINISTRATOR = "administrator"  # devices, users, agencies, servers, retention
    DPO = "dpo"  # data-protection officer: audit trail, register, retention
    JUDICIAL_VIEWER = "judicial_viewer"  # judicial authority: receives evidence
    READER = "reader"  # a plate reader (or its gateway) pushing reads: ingest only


class Permission(StrEnum):
    REGISTRY_READ = "registry.read"
    REGISTRY_WRITE = "registry.write"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    PERSONAL_READ = "personal.read"  # video, plate reads: always with a purpose
    EVIDENCE_EXPORT = "evidence.export"
    EVIDENCE_RECEIVE = "evidence.receive"
    HOLDS_CREATE = "holds.create"  # put video under a legal hold on a request
    HOLDS_MANAGE = "holds.manage"  # release a hold (supervisors only)
    RETENTION_MANAGE = "retention.manage"
    METRICS_READ = "metrics.read"
    HOTLISTS_MANAGE = "hotlists.manage"  # create lists, add, remove and import entries
    READS_INGEST = "reads.ingest"  # push plate reads (readers, their gateways)
    READS_SEARCH = "reads.search"  # investigative search over transits: always with a purpose
    ALARMS_HANDLE = "alarms.handle"  # acknowledge an alarm and record its outcome
    ALARMS_MANAGE = "alarms.manage"  # webhooks where alarms are posted
    FORWARDING_MANAGE = "forwarding.manage"  # the upstream queue and its dead letters


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({P.REGISTRY_READ, P.PERSONAL_READ, P.ALARMS_HANDLE}),
    Role.INVESTIGATOR: frozenset(
        {P.REGISTRY_READ, P.PERSONAL_READ, P.EVIDENCE_EXPORT, P.HOLDS_CREATE, P.READS_SEARCH}),
    Role.SUPERVISOR: frozenset(
        {P.REGISTRY_READ, P.PERSONAL_READ, P.EVIDENCE_EXPORT, P.HOLDS_CREATE, P.HOLDS_MANAGE,
         P.USERS_READ, P.METRICS_READ, P.HOTLISTS_MANAGE, P.READS_SEARCH, P.ALARMS_HANDLE}
    ),
    Role.ADMINISTRATOR: frozenset(
        {P.REGISTRY_READ, P.REGISTRY_WRITE, P.USERS_READ, P.USERS_WRITE, P.AUDIT_VERIFY,
         P.RETENTION_MANAGE, P.METRICS_READ, P.HOTLISTS_MANAGE, P.ALARMS_MANAGE,
         P.FORWARDING_MANAGE}
    ),
    Role.DPO: frozenset({P.REGISTRY_READ, P.USERS_READ, P.AUDIT_READ, P.AUDIT_VERIFY}),
    Role.JUDICIAL_VIEWER: frozenset({P.EVIDENCE_RECEIVE}),
    Role.READER: frozenset({P.READS_INGEST}),
}


def permissions_of(roles: frozenset[Role]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS[role]
    return frozenset(out)
