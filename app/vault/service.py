"""The vault's rules: storing a pushed document (blob first, row after), the holder's reads.

Storing runs in three steps, none of them holding a transaction open while bytes flow:
(1) a short transaction looks up the holder and the versions already stored (a retry of a
stored version answers it again without reading the body: idempotent); (2) the body streams
through the checks (size, kind by magic bytes, SHA-256) and the envelope encryption into a
new blob; (3) a transaction commits the row (and marks the previous version superseded).
When (2) or (3) fails the blob is deleted again; if even that fails (the process dies), the
blob is an orphan that `sweep_orphans` removes after `SSC_VAULT_ORPHAN_GRACE` seconds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import and_, literal, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import ClientDisconnect

from app.cards.documents import InvalidDocument as InvalidIdentityDocument
from app.cards.documents import validate_document
from app.cards.models import Card, Person, utcnow
from app.cards.service import document_index
from app.holders.service import holder_card_and_device
from app.runtime import Runtime
from app.security.principals import HolderPrincipal
from app.vault.content import Inspected
from app.vault.errors import (
    BlobNotFound,
    ContentMismatch,
    CorruptDocument,
    DocumentNotFound,
    DocumentTooLarge,
    DuplicateDocument,
    IncompleteUpload,
    InvalidDocument,
    StaleVersion,
    UnknownHolder,
    UnsupportedContent,
)
from app.vault.manifest import Manifest
from app.vault.models import DocumentStatus, VaultDocument
from app.vault.search import query_tokens, search_text
from app.vault.types import split_summary
from app.vault.vault import context_of
from token_service.envelope import EnvelopeError

logger = logging.getLogger("ssc.vault")
PERSONAL_FIELD = "vault.personal"
ISSUER_SIGNATURE_FIELD = "vault.issuer-signature"
HOLDER_SIGNATURE_FIELD = "vault.holder-signature"
MAX_LIST = 100


def _sealed_field(field: str, document_id: uuid.UUID) -> str:
    """Sealed values are bound to their document: one copied onto another row fails to open."""
    return f"{field}/{document_id}"


@dataclass(frozen=True, slots=True)
class IssuerRef:
    """Who pushes: a registered issuer (`app.departments`) and the key id its signature was
    verified with."""

    issuer_id: uuid.UUID
    code: str
    name: str
    kid: str


@dataclass(frozen=True, slots=True)
class Ingested:
    document: VaultDocument
    created: bool
    """False: this version was stored before (an idempotent retry)."""


async def find_holder(session: AsyncSession, runtime: Runtime, manifest: Manifest) -> Person:
    """The person the manifest names, through the blind index; never a guess.

    :raises UnknownHolder: (404)
    :raises InvalidDocument: the identity document number is malformed (422).
    """
    try:
        valid = validate_document(manifest.holder_document_type, manifest.holder_document_number)
    except InvalidIdentityDocument as error:
        raise InvalidDocument(f"holder: {error.detail}", field="holder") from None
    index = document_index(runtime.pii, valid.doc_type, valid.number)
    person = (await session.exec(select(Person).where(Person.document_index == index))).first()
    if person is None:
        raise UnknownHolder("no card holder has this identity document")
    return person


async def _versions(
    session: AsyncSession, issuer_id: uuid.UUID, document_id: str
) -> list[VaultDocument]:
    statement = select(VaultDocument).where(
        VaultDocument.issuer_id == issuer_id, VaultDocument.issuer_document_id == document_id
    )
    return list((await session.exec(statement)).all())


async def versions_of(
    session: AsyncSession, issuer_id: uuid.UUID, document_id: str
) -> list[VaultDocument]:
    """Every version of an issuer's document, newest first.

    :raises DocumentNotFound: (404)
    """
    versions = sorted(
        await _versions(session, issuer_id, document_id), key=lambda d: d.version, reverse=True
    )
    if not versions:
        raise DocumentNotFound(f"no document {document_id[:128]!r} of yours")
    return versions


def _same(stored: VaultDocument, manifest: Manifest, person: Person) -> bool:
    return (
        stored.sha256 == manifest.content_sha256
        and stored.person_id == person.id
        and stored.doc_type == manifest.doc_type.name
        and stored.title == manifest.title
    )


def _settled(
    versions: Sequence[VaultDocument], manifest: Manifest, person: Person
) -> VaultDocument | None:
    """The stored row when this exact version is already stored; None when it is new.

    :raises DuplicateDocument: this id and version hold another document (409).
    :raises StaleVersion: a newer version is stored (409).
    """
    for stored in versions:
        if stored.version == manifest.version:
            if _same(stored, manifest, person):
                return stored
            raise DuplicateDocument(
                f"version {manifest.version} of {manifest.document_id!r} is stored with other"
                " content; push a new version to supersede it",
                document_id=manifest.document_id,
                version=manifest.version,
            )
    newest = max((stored.version for stored in versions), default=0)
    if newest > manifest.version:
        raise StaleVersion(
            f"version {newest} of {manifest.document_id!r} is stored already",
            current_version=newest,
        )
    if versions and any(stored.person_id != person.id for stored in versions):
        raise InvalidDocument("a new version must name the same holder", field="holder")
    return None


async def ingest(
    runtime: Runtime,
    issuer: IssuerRef,
    manifest: Manifest,
    *,
    signature: str,
    body: AsyncIterable[bytes],
    declared_type: str,
) -> Ingested:
    """Stores one pushed document whose manifest's signature the caller verified.

    :raises UnsupportedContent: the declared or sniffed kind is not the manifest's (415).
    :raises DocumentTooLarge: (413)
    :raises ContentMismatch, IncompleteUpload, InvalidDocument: (422)
    :raises UnknownHolder: (404)
    :raises DuplicateDocument, StaleVersion: (409)
    """
    limit = runtime.settings.vault_max_document_bytes
    if declared_type != manifest.content_type:
        raise UnsupportedContent(
            f"the body is sent as {declared_type or 'nothing'} but the manifest says"
            f" {manifest.content_type}"
        )
    if manifest.content_size > limit:
        raise DocumentTooLarge(f"a document has at most {limit} bytes", limit=limit)
    async with runtime.database.session() as session:
        person = await find_holder(session, runtime, manifest)
        settled = _settled(
            await _versions(session, issuer.issuer_id, manifest.document_id), manifest, person
        )
    if settled is not None:
        return Ingested(settled, created=False)

    document_id = uuid.uuid4()
    inspected = Inspected(body, declared_type, limit)
    try:
        sealed = await runtime.vault.seal_into_store(document_id, inspected)
    except ClientDisconnect:
        raise IncompleteUpload("the upload ended before the whole file arrived") from None
    try:
        if inspected.size != manifest.content_size or inspected.sha256 != manifest.content_sha256:
            raise ContentMismatch(
                f"received {inspected.size} bytes with SHA-256 {inspected.sha256}; the manifest"
                f" signs {manifest.content_size} bytes with SHA-256 {manifest.content_sha256}",
                received_size=inspected.size,
                received_sha256=inspected.sha256,
            )
        document = _new_row(
            runtime, issuer, manifest, signature=signature, person=person, document_id=document_id
        )
        document.size = inspected.size
        document.sha256 = inspected.sha256
        document.blob_key = sealed.blob_key
        document.key_id = sealed.key_id
        document.wrapped_key = sealed.wrapped_key
        try:
            async with runtime.database.session() as session:
                await _commit_version(session, issuer, manifest, person, document)
        except IntegrityError:
            # Another push of the same version committed first: answer as its retry would.
            async with runtime.database.session() as session:
                versions = await _versions(session, issuer.issuer_id, manifest.document_id)
            settled = _settled(versions, manifest, person)
            if settled is None:
                raise
            await _discard(runtime, sealed.blob_key)
            return Ingested(settled, created=False)
    except BaseException:
        await _discard(runtime, sealed.blob_key)
        raise
    return Ingested(document, created=True)


async def _discard(runtime: Runtime, blob_key: str) -> None:
    try:
        await runtime.vault.blobs.delete(blob_key)
    except Exception:  # the sweeper removes it later
        logger.warning("blob %s of a failed push not deleted; left to the sweeper", blob_key)


def _new_row(
    runtime: Runtime,
    issuer: IssuerRef,
    manifest: Manifest,
    *,
    signature: str,
    person: Person,
    document_id: uuid.UUID,
) -> VaultDocument:
    public, personal = split_summary(manifest.doc_type, manifest.summary)
    return VaultDocument(
        id=document_id,
        person_id=person.id,
        issuer_id=issuer.issuer_id,
        issuer=issuer.code,
        issuer_name=issuer.name,
        issuer_document_id=manifest.document_id,
        version=manifest.version,
        doc_type=manifest.doc_type.name,
        title=manifest.title,
        search_text=search_text([manifest.title, *public.values()]),
        summary=public,
        personal_sealed=runtime.pii.seal(
            _sealed_field(PERSONAL_FIELD, document_id), orjson.dumps(personal).decode()
        )
        if personal
        else None,
        issued_at=manifest.issued_at,
        valid_until=manifest.valid_until,
        content_type=manifest.content_type,
        size=0,
        sha256="",
        blob_key="",
        key_id="",
        wrapped_key=b"",
        issuer_signature_sealed=runtime.pii.seal(
            _sealed_field(ISSUER_SIGNATURE_FIELD, document_id), signature
        ),
        issuer_kid=issuer.kid,
    )


async def _commit_version(
    session: AsyncSession,
    issuer: IssuerRef,
    manifest: Manifest,
    person: Person,
    document: VaultDocument,
) -> None:
    versions = await _versions(session, issuer.issuer_id, manifest.document_id)
    if _settled(versions, manifest, person) is not None:
        raise IntegrityError("version stored meanwhile", None, Exception())
    previous = [stored for stored in versions if stored.current]
    for stored in previous:
        stored.current = False
        if stored.status == DocumentStatus.valid:
            stored.status = DocumentStatus.superseded
        session.add(stored)
    if previous:
        document.supersedes_id = previous[0].id
    session.add(document)
    await session.flush()


async def revoke(
    session: AsyncSession, issuer_id: uuid.UUID, document_id: str, reason: str
) -> VaultDocument:
    """The issuer revokes its document (the current version): it stays visible to the holder,
    marked revoked; shares then answer that it is revoked.

    :raises DocumentNotFound: (404)
    """
    versions = await _versions(session, issuer_id, document_id)
    current = next((stored for stored in versions if stored.current), None)
    if current is None:
        raise DocumentNotFound(f"no document {document_id!r} of yours")
    if current.status != DocumentStatus.revoked:
        current.status = DocumentStatus.revoked
        current.revoked_at = utcnow()
        current.revocation_reason = reason
        session.add(current)
        await session.flush()
    return current


# --- the holder's side ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    doc_type: str | None = None
    issuer: str | None = None
    issued_from: datetime | None = None
    issued_to: datetime | None = None
    query: str | None = None
    limit: int = 50
    offset: int = 0


async def holder_card(session: AsyncSession, holder: HolderPrincipal) -> Card:
    card, _ = await holder_card_and_device(session, holder)
    return card


async def list_documents(
    session: AsyncSession, holder: HolderPrincipal, wanted: DocumentFilter
) -> list[VaultDocument]:
    """The holder's current documents (revoked ones included, marked), newest first."""
    card = await holder_card(session, holder)
    statement = select(VaultDocument).where(
        VaultDocument.person_id == card.person_id, col(VaultDocument.current).is_(True)
    )
    if wanted.doc_type is not None:
        statement = statement.where(VaultDocument.doc_type == wanted.doc_type)
    if wanted.issuer is not None:
        statement = statement.where(VaultDocument.issuer == wanted.issuer)
    if wanted.issued_from is not None:
        statement = statement.where(col(VaultDocument.issued_at) >= wanted.issued_from)
    if wanted.issued_to is not None:
        statement = statement.where(col(VaultDocument.issued_at) < wanted.issued_to)
    if wanted.query is not None:
        tokens = query_tokens(wanted.query)
        if not tokens:
            return []
        if _dialect(session) == "postgresql":
            statement = statement.where(
                text("to_tsvector('simple', search_text) @@ plainto_tsquery('simple', :q)")
            ).params(q=" ".join(tokens))
        else:
            padded = literal(" ") + col(VaultDocument.search_text) + literal(" ")
            statement = statement.where(
                and_(*(padded.like(f"% {_escape_like(t)} %", escape="\\") for t in tokens))
            )
    statement = (
        statement.order_by(col(VaultDocument.issued_at).desc(), col(VaultDocument.id))
        .offset(wanted.offset)
        .limit(min(wanted.limit, MAX_LIST))
    )
    return list((await session.exec(statement)).all())


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "sessions are bound to the engine"
    return bind.dialect.name


def _escape_like(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def holder_document(
    session: AsyncSession, holder: HolderPrincipal, document_id: uuid.UUID
) -> VaultDocument:
    """One of the holder's documents (any version).

    :raises DocumentNotFound: not the holder's, or no such document (404, the same answer).
    """
    card = await holder_card(session, holder)
    document = await session.get(VaultDocument, document_id)
    if document is None or document.person_id != card.person_id:
        raise DocumentNotFound("no such document in your vault")
    return document


async def history(session: AsyncSession, document: VaultDocument) -> list[VaultDocument]:
    """Every version of the document, newest first."""
    statement = (
        select(VaultDocument)
        .where(
            VaultDocument.issuer_id == document.issuer_id,
            VaultDocument.issuer_document_id == document.issuer_document_id,
        )
        .order_by(col(VaultDocument.version).desc())
    )
    return list((await session.exec(statement)).all())


def personal_fields(runtime: Runtime, document: VaultDocument) -> dict[str, str]:
    if document.personal_sealed is None:
        return {}
    opened = runtime.pii.open(_sealed_field(PERSONAL_FIELD, document.id), document.personal_sealed)
    loaded: dict[str, str] = orjson.loads(opened)
    return loaded


def issuer_signature(runtime: Runtime, document: VaultDocument) -> str:
    return runtime.pii.open(
        _sealed_field(ISSUER_SIGNATURE_FIELD, document.id), document.issuer_signature_sealed
    )


def holder_signature(runtime: Runtime, document: VaultDocument) -> str | None:
    if document.holder_signature_sealed is None:
        return None
    return runtime.pii.open(
        _sealed_field(HOLDER_SIGNATURE_FIELD, document.id), document.holder_signature_sealed
    )


async def content(runtime: Runtime, document: VaultDocument) -> AsyncIterator[bytes]:
    """The decrypted file, streamed. The first chunk is read before this returns, so a lost
    blob or a wrong key answers a problem instead of a cut response; a later failure (a
    truncated blob) cuts the response short, never completes it.

    :raises CorruptDocument: (500) the blob is missing or fails to decrypt.
    """
    try:
        data_key = runtime.vault.data_key(document.id, document.key_id, document.wrapped_key)
        chunks = runtime.vault.plaintext(document.id, document.blob_key, data_key)
        first = await anext(chunks)
    except (EnvelopeError, BlobNotFound) as error:
        logger.error("document %s cannot be opened: %s", document.id, error)
        raise CorruptDocument("the stored file of this document cannot be opened") from None
    return _prepend(first, chunks)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


# --- upkeep --------------------------------------------------------------------------------


async def sweep_orphans(runtime: Runtime, *, grace: float | None = None) -> int:
    """Deletes blobs no document row names, older than `grace` seconds (default
    `SSC_VAULT_ORPHAN_GRACE`: a push in flight has written its blob and not yet its row), and
    the leftovers of interrupted uploads; returns how many blobs were deleted."""
    grace = runtime.settings.vault_orphan_grace if grace is None else grace
    cutoff = datetime.now(UTC).timestamp() - grace
    candidates = [
        info.key async for info in runtime.vault.blobs.listing() if info.modified_at <= cutoff
    ]
    await runtime.vault.blobs.sweep_temporary(grace)
    if not candidates:
        return 0
    async with runtime.database.session() as session:
        known: set[str] = set()
        for start in range(0, len(candidates), 500):
            batch = candidates[start : start + 500]
            rows = await session.exec(
                select(VaultDocument.blob_key).where(col(VaultDocument.blob_key).in_(batch))
            )
            known.update(rows.all())
    orphans = [key for key in candidates if key not in known]
    for key in orphans:
        await runtime.vault.blobs.delete(key)
    if orphans:
        logger.info("vault sweeper deleted %d orphaned blobs", len(orphans))
    return len(orphans)


async def rewrap_data_keys(runtime: Runtime) -> int:
    """Rewraps every data key not under the active master key (after a rotation: put the new
    key first in SSC_VAULT_MASTER_KEYS, run this, then drop the old key); returns how many."""
    active = runtime.vault.master_keys.active
    done = 0
    async with runtime.database.session() as session:
        rows = await session.exec(select(VaultDocument).where(VaultDocument.key_id != active))
        for document in rows.all():
            data_key = runtime.vault.data_key(document.id, document.key_id, document.wrapped_key)
            wrapped = runtime.vault.master_keys.wrap(data_key, context_of(document.id))
            document.key_id = wrapped.key_id
            document.wrapped_key = wrapped.wrapped
            session.add(document)
            done += 1
    return done


# --- departments reading with the holder's consent ------------------------------------------


async def consented_documents(
    session: AsyncSession, person_id: uuid.UUID, types: Sequence[str]
) -> list[VaultDocument]:
    """The holder's current documents of the consented types, newest first."""
    statement = (
        select(VaultDocument)
        .where(VaultDocument.person_id == person_id, col(VaultDocument.current).is_(True))
        .where(col(VaultDocument.doc_type).in_(list(types)))
        .order_by(col(VaultDocument.issued_at).desc())
        .limit(MAX_LIST)
    )
    return list((await session.exec(statement)).all())
