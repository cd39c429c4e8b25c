"""the mobile pages: channel apps' origins allowed to frame /h5/

Revision ID: 0018_h5
Revises: 0017_vault
Create Date: 2026-12-02

- `h5_channel_origins`: the `https://` origins of a registered channel app (`api_clients` of
  kind `channel`), the pages' CSP `frame-ancestors` while the channel is active.

Chained after `0014_circle` because the pages' branch merged the channel apps' branch.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0018_h5"
down_revision: str | None = "0017_vault"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "h5_channel_origins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_pk", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_pk"], ["api_clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_pk", "origin", name="uq_h5_channel_origins"),
    )
    op.create_index("ix_h5_channel_origins_channel_pk", "h5_channel_origins", ["channel_pk"])


def downgrade() -> None:
    op.drop_index("ix_h5_channel_origins_channel_pk", table_name="h5_channel_origins")
    op.drop_table("h5_channel_origins")
