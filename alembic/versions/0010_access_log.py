"""access log: the holder's view of every disclosure of their data

Revision ID: 0010_access_log
Revises: 0008_status_index_pool
Create Date: 2026-12-02

Entries are written by the audit consumer in the transaction that stores their audit event
and keyed by its id (`app.accesslog.recorder`).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010_access_log"
down_revision: str | None = "0009_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_log_entries",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("venue", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False),
        sa.Column("scene", sa.String(64), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_access_log_entries_card_time", "access_log_entries", ["card_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("access_log_entries")
