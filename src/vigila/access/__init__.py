"""Access: users, roles, zone scopes, sessions, purpose, and the audit chain.

Every other capability asks this one who is acting (`Principal`), whether
they may (`Principal.require`), which zones they see (`Principal.zone_clause`),
and records what was done (`audit.record`).
"""

from vigila.access import audit, users
from vigila.access.principal import Principal, Purpose
from vigila.access.roles import ROLE_PERMISSIONS, Permission, Role
from vigila.access.sessions import Authenticator, IssuedSession, hasher

__all__ = [
    "ROLE_PERMISSIONS",
    "Authenticator",
    "IssuedSession",
    "Permission",
    "Principal",
    "Purpose",
    "Role",
    "audit",
    "hasher",
    "users",
]
