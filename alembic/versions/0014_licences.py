"""issuers (departments) with their signing keys; linked e-licences; consent requests

Revision ID: 0014_licences
Revises: 0013_entitlements
Create Date: 2026-12-02

`issuers`: departments, training institutions, employers, with the document types each may
issue; `issuer_keys`: their public JWKs (active, retired, revoked); `api_clients.issuer_id`:
an issuer's clients; `licences`: the newest version of each linked e-licence, its signed
original sealed; `consent_requests`: departments' requests to read a holder's items.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014_licences"
down_revision: str | None = "0013_entitlements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issuers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column("issued_types", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "issuer_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("issuer_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(length=128), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_id", "kid"),
    )
    op.create_index(op.f("ix_issuer_keys_issuer_id"), "issuer_keys", ["issuer_id"])
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("issuer_id", sa.Uuid(), nullable=True))
        batch.create_index(op.f("ix_api_clients_issuer_id"), ["issuer_id"], unique=False)
        batch.create_foreign_key("fk_api_clients_issuer_id", "issuers", ["issuer_id"], ["id"])
    op.create_table(
        "licences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("issuer_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("document_type", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("kid", sa.String(length=128), nullable=False),
        sa.Column("signed_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_id", "document_id"),
    )
    op.create_index(op.f("ix_licences_issuer_id"), "licences", ["issuer_id"])
    op.create_index(op.f("ix_licences_person_id"), "licences", ["person_id"])
    op.create_table(
        "consent_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("issuer_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("access_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("access_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_consent_requests_issuer_id"), "consent_requests", ["issuer_id"])
    op.create_index(op.f("ix_consent_requests_person_id"), "consent_requests", ["person_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consent_requests_person_id"), table_name="consent_requests")
    op.drop_index(op.f("ix_consent_requests_issuer_id"), table_name="consent_requests")
    op.drop_table("consent_requests")
    op.drop_index(op.f("ix_licences_person_id"), table_name="licences")
    op.drop_index(op.f("ix_licences_issuer_id"), table_name="licences")
    op.drop_table("licences")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_constraint("fk_api_clients_issuer_id", type_="foreignkey")
        batch.drop_index(op.f("ix_api_clients_issuer_id"))
        batch.drop_column("issuer_id")
    op.drop_index(op.f("ix_issuer_keys_issuer_id"), table_name="issuer_keys")
    op.drop_table("issuer_keys")
    op.drop_table("issuers")
