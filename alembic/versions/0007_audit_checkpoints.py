"""audit checkpoints: signed notes of the audit chain's head, outside the chain table

Revision ID: 0007_audit_checkpoints
Revises: 0006_seal_birth_date
Create Date: 2026-12-02

`ssc audit verify-chain` checks the latest checkpoint: the row it names must still exist with
the hash it names, so deleting the newest audit rows (which leaves a valid shorter chain) is
detected (`app.audit.checkpoints`).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007_audit_checkpoints"
down_revision: str | None = "0006_seal_birth_date"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_row_id", "audit_checkpoints", ["row_id"])


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
