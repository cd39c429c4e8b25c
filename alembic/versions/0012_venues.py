"""venues of organisations; withdrawing an organisation's approval

Revision ID: 0012_venues
Revises: 0011_complaints
Create Date: 2026-12-02

`venues` (an organisation's places: name, region code, location); `api_clients.venue_id`
(a scanner's venue); `organisations.withdrawn_at`. Existing scanners keep working: every
organisation gets a default venue at its own location and its scanners are placed there.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0012_venues"
down_revision: str | None = "0011_complaints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    venues = op.create_table(
        "venues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_venues_organisation_id"), "venues", ["organisation_id"], unique=False
    )
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("venue_id", sa.Uuid(), nullable=True))
        batch.create_index(op.f("ix_api_clients_venue_id"), ["venue_id"], unique=False)
        batch.create_foreign_key("fk_api_clients_venue_id", "venues", ["venue_id"], ["id"])

    connection = op.get_bind()
    organisations = sa.table(
        "organisations",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("region_code", sa.String()),
        sa.column("latitude", sa.Float()),
        sa.column("longitude", sa.Float()),
    )
    clients = sa.table(
        "api_clients", sa.column("organisation_id", sa.Uuid()), sa.column("venue_id", sa.Uuid())
    )
    now = datetime.now(UTC)
    for row in connection.execute(sa.select(organisations)).all():
        venue_id = uuid.uuid4()
        connection.execute(
            venues.insert().values(
                id=venue_id,
                organisation_id=row.id,
                name=row.name,
                region_code=row.region_code,
                latitude=row.latitude,
                longitude=row.longitude,
                is_default=True,
                created_at=now,
            )
        )
        connection.execute(
            clients.update().where(clients.c.organisation_id == row.id).values(venue_id=venue_id)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_constraint("fk_api_clients_venue_id", type_="foreignkey")
        batch.drop_index(op.f("ix_api_clients_venue_id"))
        batch.drop_column("venue_id")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("withdrawn_at")
    op.drop_index(op.f("ix_venues_organisation_id"), table_name="venues")
    op.drop_table("venues")
