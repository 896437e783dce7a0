"""Storage: the database engine, the shared schema metadata, migrations.

SQLite (WAL) under the data folder by default; PostgreSQL when
VIGILA_DATABASE_URL names one. Capabilities define their tables against
`metadata` and reach the database only through `Database`.
"""

from vigila.store.engine import Database, dialect_of
from vigila.store.migrate import current_revision, head_revision, upgrade
from vigila.store.schema import metadata
from vigila.store.types import UTCDateTime

__all__ = [
    "Database",
    "UTCDateTime",
    "current_revision",
    "dialect_of",
    "head_revision",
    "metadata",
    "upgrade",
]
