"""notifications: delivery state per (notification, sender) besides the inbox

Revision ID: 0019_notification_deliveries
Revises: 0018_h5
Create Date: 2026-12-03

- `notification_deliveries`: one row per notification and registered sender (SMS, push),
  made `pending` with the notification; tried with backoff until `delivered` or `failed`
  (given up after `SSC_NOTIFICATION_DELIVERY_ATTEMPTS`). Due rows are found by
  (status, next_attempt_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019_notification_deliveries"
down_revision: str | None = "0018_h5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("notification_id", "sender"),
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
