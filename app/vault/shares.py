"""Verifiable shares: a link (and QR) the holder gives, e.g., a new employer.

The link carries a secret id (`shr_` + 32 random bytes); only its HMAC is stored. Opening it
(`GET /v1/shares/{share_id}`) streams the file with the proof beside it: the issuer's signed
manifest, and our attestation, a JWS (ES256, a key of `/.well-known/jwks.json`) saying that the
document, with this SHA-256, was issued by that issuer to the holder of this card (masked name
and card number, for the recipient to compare with the person in front of them), whether the
issuer's signature verifies and whether the document is revoked, as of now.

A share ends at its expiry, when the holder revokes it, or after its first opening when it is
one-time (the opening is counted atomically: two recipients racing, one wins). Each share made
and each opening is an audit event, which the audit consumer writes to the holder's access
log (`app.accesslog.recorder`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import or_
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, Person, utcnow
from app.cards.service import NAME_FIELD
from app.departments.service import issuer_keys, signature_state
from app.holders.service import mask_card_number
from app.holders.sessions import as_utc
from app.runtime import Runtime
from app.security.opaque import MAX_SECRET_CHARS, hash_opaque_secret, new_opaque_secret
from app.security.pii import mask_name
from app.security.principals import HolderPrincipal
from app.vault import service
from app.vault.errors import InvalidDocument, ShareNotFound
from app.vault.models import DocumentStatus, VaultDocument, VaultShare
from token_service.keys import b64url

SHARE_PREFIX = "shr_"
ATTESTATION_TYPE = "ssc-vault-attestation+jwt"
SHARE_CREATED = "vault.share_created"
SHARE_OPENED = "vault.share_opened"
SHARE_REVOKED = "vault.share_revoked"
MAX_SHARES_LISTED = 100


@dataclass(frozen=True, slots=True)
class NewShare:
    share: VaultShare
    secret: str
    """The share id of the link, returned once."""


async def create_share(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    document_id: uuid.UUID,
    *,
    purpose: str,
    ttl_seconds: int,
    one_time: bool,
) -> NewShare:
    """:raises DocumentNotFound: (404)
    :raises InvalidDocument: the expiry is beyond `SSC_VAULT_SHARE_MAX_TTL` (422)."""
    document = await service.holder_document(session, holder, document_id)
    card = await service.holder_card(session, holder)
    if ttl_seconds > runtime.settings.vault_share_max_ttl:
        raise InvalidDocument(
            f"a share lasts at most {runtime.settings.vault_share_max_ttl} seconds",
            field="expires_in",
        )
    secret = new_opaque_secret(SHARE_PREFIX)
    share = VaultShare(
        token_hash=hash_opaque_secret(secret, runtime.secret_hash_key),
        document_id=document.id,
        person_id=card.person_id,
        purpose=purpose,
        one_time=one_time,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    session.add(share)
    await session.flush()
    await record(
        runtime.store,
        SHARE_CREATED,
        f"holder:{card.id}",
        str(card.id),
        {
            "document": str(document.id),
            "doc_type": document.doc_type,
            "share": str(share.id),
            "purpose": purpose,
            "one_time": one_time,
            "expires_at": share.expires_at.isoformat(),
        },
    )
    return NewShare(share, secret)


async def list_shares(
    session: AsyncSession, holder: HolderPrincipal, document_id: uuid.UUID
) -> list[VaultShare]:
    document = await service.holder_document(session, holder, document_id)
    statement = (
        select(VaultShare)
        .where(VaultShare.document_id == document.id)
        .order_by(col(VaultShare.created_at).desc())
        .limit(MAX_SHARES_LISTED)
    )
    return list((await session.exec(statement)).all())


async def revoke_share(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    document_id: uuid.UUID,
    share_id: uuid.UUID,
) -> VaultShare:
    """Ends a share at once (idempotent). :raises ShareNotFound: (404)"""
    document = await service.holder_document(session, holder, document_id)
    share = await session.get(VaultShare, share_id)
    if share is None or share.document_id != document.id:
        raise ShareNotFound("no such share of this document")
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        session.add(share)
        await session.flush()
        card = await service.holder_card(session, holder)
        await record(
            runtime.store,
            SHARE_REVOKED,
            f"holder:{card.id}",
            str(card.id),
            {"document": str(document.id), "share": str(share.id)},
        )
    return share


def share_state(share: VaultShare, now: datetime) -> str:
    if share.revoked_at is not None:
        return "revoked"
    if share.one_time and share.opened_count > 0:
        return "used"
    if as_utc(share.expires_at) <= now:
        return "expired"
    return "active"


@dataclass(frozen=True, slots=True)
class OpenedShare:
    document: VaultDocument
    attestation: str
    issuer_signature: str
    chunks: AsyncIterator[bytes]


async def open_share(runtime: Runtime, secret: str) -> OpenedShare:
    """The recipient opens a share: counted (a one-time share only once), logged for the
    holder, then the file and its proof.

    :raises ShareNotFound: unknown, expired, revoked or used up: one answer for all (404).
    """
    if not secret.startswith(SHARE_PREFIX) or len(secret) > MAX_SECRET_CHARS:
        raise ShareNotFound("no such share, or it is no longer valid")
    token_hash = hash_opaque_secret(secret, runtime.secret_hash_key)
    now = utcnow()
    async with runtime.database.session() as session:
        share = (
            await session.exec(select(VaultShare).where(VaultShare.token_hash == token_hash))
        ).first()
        if share is None or share_state(share, now) != "active":
            raise ShareNotFound("no such share, or it is no longer valid")
        # Counted with a guard in the statement: of two concurrent openings of a one-time
        # share exactly one changes the row.
        claimed = await session.exec(
            update(VaultShare)
            .where(col(VaultShare.id) == share.id)
            .where(col(VaultShare.revoked_at).is_(None))
            .where(col(VaultShare.expires_at) > now)
            .where(or_(col(VaultShare.one_time).is_(False), col(VaultShare.opened_count) == 0))
            .values(opened_count=col(VaultShare.opened_count) + 1, last_opened_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            raise ShareNotFound("no such share, or it is no longer valid")
        document = await session.get(VaultDocument, share.document_id)
        card = (await session.exec(select(Card).where(Card.person_id == share.person_id))).first()
        person = await session.get(Person, share.person_id)
        assert document is not None and card is not None and person is not None
        signature = service.issuer_signature(runtime, document)
        # Now, not as on ingest: a key revoked since (compromise) fails it; a retired one not.
        keys = await issuer_keys(session, document.issuer_id)
        signature_valid = signature_state(keys, signature).valid
        attestation = attest(
            runtime,
            document,
            card,
            masked_name=mask_name(runtime.pii.open(NAME_FIELD, person.name_sealed)),
            signature_valid=signature_valid,
            expires_at=share.expires_at,
        )
        share_id, purpose = share.id, share.purpose
    chunks = await service.content(runtime, document)
    await record(
        runtime.store,
        SHARE_OPENED,
        f"share:{share_id}",
        str(card.id),
        {
            "document": str(document.id),
            "doc_type": document.doc_type,
            "share": str(share_id),
            "purpose": purpose,
        },
    )
    return OpenedShare(document, attestation, signature, chunks)


def attest(
    runtime: Runtime,
    document: VaultDocument,
    card: Card,
    *,
    masked_name: str,
    signature_valid: bool,
    expires_at: datetime,
) -> str:
    """Our signed statement about a shared document (JWS compact, ES256)."""
    key = runtime.keyring.signing_key
    now = int(time.time())
    payload = {
        "iss": runtime.settings.public_url,
        "iat": now,
        "exp": max(now + 60, int(as_utc(expires_at).timestamp())),
        "sub": f"document:{document.id}",
        "document": {
            "id": str(document.id),
            "type": document.doc_type,
            "title": document.title,
            "issuer": document.issuer,
            "issuer_name": document.issuer_name,
            "issuer_document_id": document.issuer_document_id,
            "version": document.version,
            "issued_at": as_utc(document.issued_at).isoformat(),
            "valid_until": None
            if document.valid_until is None
            else as_utc(document.valid_until).isoformat(),
            "content_type": document.content_type,
            "sha256": document.sha256,
            "size": document.size,
        },
        "status": document.status,
        "revoked": document.status == DocumentStatus.revoked,
        "issuer_signature_valid": signature_valid,
        "holder": {
            "masked_name": masked_name,
            "masked_card_number": mask_card_number(card.card_number),
            "card_status": card.status,
            "issuer": runtime.settings.issuer,
        },
    }
    return jwt.encode(
        payload,
        key.private_key,
        algorithm="ES256",
        headers={"kid": b64url(key.kid), "typ": ATTESTATION_TYPE},
    )
