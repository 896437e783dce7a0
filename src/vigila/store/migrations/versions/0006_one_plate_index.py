"""Transits keep one plate index, on the look-alike key.

Every plate query (exact, prefix pattern, look-alike, route, convoy) is served by
ix_transits_plate_key_time; the indexes on the plate itself only made inserts dearer,
each of them landing on a random page.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_transits_plate_time", table_name="transits")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_transits_plate_pattern")


def downgrade() -> None:
    op.create_index("ix_transits_plate_time", "transits", ["plate", "time"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_transits_plate_pattern ON transits "
                   "(plate varchar_pattern_ops)")
