"""holder entitlements (GD7), read by the scenes that list them

Revision ID: 0013_entitlements
Revises: 0011_complaints
Create Date: 2026-12-02

`entitlements`: one row per (person, kind) while granted, with its expiry and who granted it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013_entitlements"
down_revision: str | None = "0012_venues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entitlements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=128), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "kind"),
    )
    op.create_index("ix_entitlements_person_id", "entitlements", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_entitlements_person_id", table_name="entitlements")
    op.drop_table("entitlements")
