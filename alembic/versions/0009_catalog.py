"""the scene catalog as data: versions of the provincial catalog and city supplements

Revision ID: 0009_catalog
Revises: 0008_status_index_pool
Create Date: 2026-12-02

`catalog_versions` keeps every version: the province's (one `current`, the earlier ones
`superseded`) and the cities' supplements (`proposed`, then `approved` or `rejected`; an
approved one is `superseded` by the city's next approved one). Seeds version 1, the default
provincial catalog (`app.catalog.defaults`), for the province of `SSC_ISSUER`.
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op
from app.catalog.defaults import DEFAULT_SCENES

revision: str = "0009_catalog"
down_revision: str | None = "0008_status_index_pool"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    versions = op.create_table(
        "catalog_versions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("region", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scenes", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_index(op.f("ix_catalog_versions_region"), "catalog_versions", ["region"])
    op.create_index(op.f("ix_catalog_versions_status"), "catalog_versions", ["status"])
    now = datetime.now(UTC)
    op.bulk_insert(
        versions,
        [
            {
                "number": 1,
                "region": os.environ.get("SSC_ISSUER", "360000"),
                "kind": "provincial",
                "status": "current",
                "scenes": list(DEFAULT_SCENES),
                "note": "default provincial catalog (GD7, SC8-10)",
                "based_on": None,
                "created_by": "migration:0009_catalog",
                "created_at": now,
                "decided_by": "migration:0009_catalog",
                "decided_at": now,
                "decision_reason": None,
            }
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_catalog_versions_status"), table_name="catalog_versions")
    op.drop_index(op.f("ix_catalog_versions_region"), table_name="catalog_versions")
    op.drop_table("catalog_versions")
