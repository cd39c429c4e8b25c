"""complaints and their timeline; administrator roles

Revision ID: 0011_complaints
Revises: 0008_status_index_pool
Create Date: 2026-12-02

`complaints` (sealed details and contact, the tracking number only as its blind index) and
`complaint_events` (the timeline). `api_clients` gains `role` and `region_code`: existing
admin clients keep a null role, read as provincial_admin, so they keep what they could do.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011_complaints"
down_revision: str | None = "0010_access_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=32), nullable=True)
        )
        batch.add_column(
            sa.Column("region_code", sa.String(length=12), nullable=True)
        )
    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tracking_index", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column("card_id", sa.Uuid(), nullable=True),
        sa.Column("access_log_ref", sa.String(length=64), nullable=True),
        sa.Column("details_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("contact_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.String(length=4000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracking_index"),
    )
    for column in ("status", "region_code", "card_id", "created_at"):
        op.create_index(op.f(f"ix_complaints_{column}"), "complaints", [column], unique=False)
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("note", sa.String(length=4000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_complaint_events_complaint_id"),
        "complaint_events",
        ["complaint_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_complaint_events_complaint_id"), table_name="complaint_events")
    op.drop_table("complaint_events")
    for column in ("status", "region_code", "card_id", "created_at"):
        op.drop_index(op.f(f"ix_complaints_{column}"), table_name="complaints")
    op.drop_table("complaints")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("region_code")
        batch.drop_column("role")
