"""the HR e-document vault (GD15): documents, one row per version, and verifiable shares

Revision ID: 0017_vault
Revises: 0016_circle
Create Date: 2026-12-02

`vault_documents`: metadata of each stored file (sealed in the blob store); personal summary
fields and the issuer's signed manifest sealed. On PostgreSQL a GIN index over
`to_tsvector('simple', search_text)` serves the holder's full-text search.
`vault_shares`: the holder's share links (only the HMAC of the link's secret).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0017_vault"
down_revision: str | None = "0016_circle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vault_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("issuer_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("issuer_name", sa.String(length=200), nullable=False),
        sa.Column("issuer_document_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("doc_type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("personal_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("issuer_signature_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("issuer_kid", sa.String(length=128), nullable=False),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=200), nullable=True),
        sa.Column("holder_signature_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("holder_signature_kind", sa.String(length=16), nullable=True),
        sa.Column("holder_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("blob_key"),
        sa.UniqueConstraint(
            "issuer_id", "issuer_document_id", "version", name="uq_vault_doc_version"
        ),
    )
    op.create_index("ix_vault_documents_issuer", "vault_documents", ["issuer"])
    op.create_index("ix_vault_documents_doc_type", "vault_documents", ["doc_type"])
    op.create_index(
        "ix_vault_documents_person_current", "vault_documents", ["person_id", "current"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_vault_documents_search ON vault_documents"
            " USING gin (to_tsvector('simple', search_text))"
        )
    op.create_table(
        "vault_shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_count", sa.Integer(), nullable=False),
        sa.Column("last_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["vault_documents.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_vault_shares_document_id", "vault_shares", ["document_id"])
    op.create_index("ix_vault_shares_person_id", "vault_shares", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_vault_shares_person_id", table_name="vault_shares")
    op.drop_index("ix_vault_shares_document_id", table_name="vault_shares")
    op.drop_table("vault_shares")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_vault_documents_search")
    op.drop_index("ix_vault_documents_person_current", table_name="vault_documents")
    op.drop_index("ix_vault_documents_doc_type", table_name="vault_documents")
    op.drop_index("ix_vault_documents_issuer", table_name="vault_documents")
    op.drop_table("vault_documents")
