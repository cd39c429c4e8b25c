"""a pool of status list indexes per card

Revision ID: 0008_status_index_pool
Revises: 0006_seal_birth_date
Create Date: 2026-12-02

`card_status_indexes` holds every status list index a card has had: its current pool
(`retired_at` null) and the pools of its replaced carriers (retired, INVALID for good). Each
existing card's single `cards.status_index` becomes its pool of one here; the card gets the
rest of its pool (`SSC_STATUS_INDEX_POOL`) the next time its phone fetches QR tokens, and a
fresh full pool at its next replacement. `cards.status_index` stays (SQLite cannot drop a
UNIQUE column in place) as the first index of the current pool.

Independent of anything else added concurrently: it only creates a table and copies one
column into it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008_status_index_pool"
down_revision: str | None = "0007_audit_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_status_indexes",
        sa.Column("status_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"]),
        sa.PrimaryKeyConstraint("status_index"),
    )
    op.create_index(
        op.f("ix_card_status_indexes_card_id"), "card_status_indexes", ["card_id"], unique=False
    )
    op.execute(
        "INSERT INTO card_status_indexes (status_index, card_id, retired_at)"
        " SELECT status_index, id, NULL FROM cards"
    )


def downgrade() -> None:
    # The card keeps `cards.status_index` (the first index of its current pool); the other
    # indexes are forgotten, so the retired pools' entries read VALID again after a downgrade.
    op.drop_index(op.f("ix_card_status_indexes_card_id"), table_name="card_status_indexes")
    op.drop_table("card_status_indexes")
