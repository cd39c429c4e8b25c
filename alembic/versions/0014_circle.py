"""the holder's circle: family links, notifications, channels, banks, payments

Revision ID: 0014_circle
Revises: 0013_entitlements
Create Date: 2026-12-02

- `family_links`, `family_presentations`: the family service (a guardian's QR tokens of a ward
  by `cti`); `access_log_entries.party` names the other person of a family action.
- `notifications`: one inbox per holder, unique per (card, dedup key).
- `channel_links`, `channel_link_requests`, `channel_refresh_tokens`; `api_clients.channel_type`.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014_circle"
down_revision: str | None = "0013_entitlements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "family_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("guardian_card_id", sa.Uuid(), nullable=False),
        sa.Column("ward_card_id", sa.Uuid(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("accepted_at", nullable=True),
        sa.Column("consent_recorded_by", sa.String(length=128), nullable=True),
        _at("ended_at", nullable=True),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["guardian_card_id"], ["cards.id"]),
        sa.ForeignKeyConstraint(["ward_card_id"], ["cards.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_family_links_guardian_card_id", "family_links", ["guardian_card_id"])
    op.create_index("ix_family_links_ward_card_id", "family_links", ["ward_card_id"])
    op.create_table(
        "family_presentations",
        sa.Column("cti", sa.String(length=32), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_card_id", sa.Uuid(), nullable=False),
        sa.Column("ward_card_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_label", sa.String(length=40), nullable=False),
        _at("expires_at"),
        sa.ForeignKeyConstraint(["link_id"], ["family_links.id"]),
        sa.PrimaryKeyConstraint("cti"),
    )
    op.create_index("ix_family_presentations_link_id", "family_presentations", ["link_id"])
    op.add_column("access_log_entries", sa.Column("party", sa.String(length=40), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=128), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _at("created_at"),
        _at("read_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("card_id", "dedup_key", name="uq_notifications_card_dedup"),
    )
    op.create_index("ix_notifications_card_time", "notifications", ["card_id", "created_at"])
    op.add_column("api_clients", sa.Column("channel_type", sa.String(length=16), nullable=True))
    op.create_table(
        "channel_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("channel_pk", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("linked_at"),
        _at("last_used_at", nullable=True),
        _at("unlinked_at", nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"]),
        sa.ForeignKeyConstraint(["channel_pk"], ["api_clients.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("card_id", "channel_pk", "family_id"):
        op.create_index(f"ix_channel_links_{column}", "channel_links", [column])
    op.create_table(
        "channel_link_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_pk", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        _at("created_at"),
        _at("expires_at"),
        sa.ForeignKeyConstraint(["channel_pk"], ["api_clients.id"]),
        sa.ForeignKeyConstraint(["link_id"], ["channel_links.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_channel_link_requests_channel_pk", "channel_link_requests", ["channel_pk"]
    )
    op.create_table(
        "channel_refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _at("expires_at"),
        _at("used_at", nullable=True),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["channel_links.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_channel_refresh_tokens_link_id", "channel_refresh_tokens", ["link_id"])


def downgrade() -> None:
    op.drop_index("ix_channel_refresh_tokens_link_id", table_name="channel_refresh_tokens")
    op.drop_table("channel_refresh_tokens")
    op.drop_index("ix_channel_link_requests_channel_pk", table_name="channel_link_requests")
    op.drop_table("channel_link_requests")
    for column in ("card_id", "channel_pk", "family_id"):
        op.drop_index(f"ix_channel_links_{column}", table_name="channel_links")
    op.drop_table("channel_links")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("channel_type")
    op.drop_index("ix_notifications_card_time", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("access_log_entries") as batch:
        batch.drop_column("party")
    op.drop_index("ix_family_presentations_link_id", table_name="family_presentations")
    op.drop_table("family_presentations")
    op.drop_index("ix_family_links_ward_card_id", table_name="family_links")
    op.drop_index("ix_family_links_guardian_card_id", table_name="family_links")
    op.drop_table("family_links")
