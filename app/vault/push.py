"""Issuers push documents: one file with its signed manifest, or many in one JSONL body.

The issuer is a registered issuer of `app.departments` (department, training institution,
employer) acting through its client; it may push a type only with the `issue:<type>` scope
and the type in its registry entry. The manifest is a JWS over RFC 8785 canonical JSON
(`token_service.jws`), verified against the issuer's active keys before a byte is stored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import orjson
from sqlmodel import select

from app.audit.log import record
from app.cards.models import Card
from app.departments.service import require_issuable, verify_signed
from app.errors import DomainError
from app.runtime import Runtime
from app.security.principals import DepartmentPrincipal
from app.vault import service
from app.vault.errors import DocumentNotFound, DocumentTooLarge, InvalidDocument
from app.vault.manifest import parse_manifest
from app.vault.models import VaultDocument

MAX_BULK_LINES = 10_000
ISSUER_DOWNLOADED = "vault.issuer_downloaded"


async def push(
    runtime: Runtime,
    principal: DepartmentPrincipal,
    signature: str,
    body: AsyncIterable[bytes],
    declared_type: str | None,
) -> service.Ingested:
    """One document: verify the signed manifest, check the issuer may issue its type, store
    (`declared_type` is the body's media type; None: the manifest's).

    :raises SignatureRejected: (422) tampered, unknown, retired or revoked key, malformed.
    :raises TypeNotIssued: (403)
    :raises: what `service.ingest` raises.
    """
    async with runtime.database.session() as session:
        verified = await verify_signed(session, principal.issuer_id, signature)
        manifest = parse_manifest(verified.payload)
        issuer = await require_issuable(session, principal, manifest.doc_type.name)
    reference = service.IssuerRef(issuer.id, issuer.code, issuer.name, verified.kid)
    return await service.ingest(
        runtime,
        reference,
        manifest,
        signature=signature,
        body=body,
        declared_type=declared_type or manifest.content_type,
    )


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    status: int
    document: VaultDocument | None = None
    created: bool = False
    error: DomainError | None = None


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_bulk(
    runtime: Runtime, principal: DepartmentPrincipal, body: AsyncIterable[bytes]
) -> list[LineResult]:
    """Many documents, one JSON object a line: `{"signature": "<JWS>", "content": "<base64>"}`.

    Each line is stored or refused on its own (a result per line); a refused line leaves
    nothing behind. The body as a whole is limited by `SSC_VAULT_MAX_BULK_BYTES`.

    :raises DocumentTooLarge: (413) the body exceeds the limit (lines before it are stored).
    """
    limit = runtime.settings.vault_max_bulk_bytes
    results: list[LineResult] = []
    received = 0
    buffer = bytearray()
    number = 0

    async def handle(raw: bytes) -> None:
        nonlocal number
        number += 1
        if not raw.strip():
            return
        if len(results) >= MAX_BULK_LINES:
            results.append(_refused(number, InvalidDocument("too many lines in one push")))
            return
        try:
            results.append(await _push_line(runtime, principal, number, raw))
        except DomainError as error:
            results.append(_refused(number, error))

    async for piece in body:
        received += len(piece)
        if received > limit:
            raise DocumentTooLarge(f"a bulk push has at most {limit} bytes", limit=limit)
        buffer += piece
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            await handle(line)
    if buffer:
        await handle(bytes(buffer))
    return results


async def _push_line(
    runtime: Runtime, principal: DepartmentPrincipal, number: int, raw: bytes
) -> LineResult:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidDocument("the line is not JSON") from None
    if not isinstance(item, dict) or set(item) != {"signature", "content"}:
        raise InvalidDocument('a line is {"signature": "<JWS>", "content": "<base64>"}')
    signature, encoded = item["signature"], item["content"]
    if not isinstance(signature, str) or not isinstance(encoded, str):
        raise InvalidDocument("signature and content are strings")
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDocument("content is not standard base64") from None
    outcome = await push(runtime, principal, signature, _one(content), None)
    return LineResult(number, 201 if outcome.created else 200, outcome.document, outcome.created)


def _refused(number: int, error: DomainError) -> LineResult:
    return LineResult(number, error.status, error=error)


async def issuer_documents(
    runtime: Runtime, principal: DepartmentPrincipal, document_id: str
) -> list[VaultDocument]:
    """Every version of one of the issuer's documents, newest first (the employer reads the
    holder's signature of a contract here).

    :raises DocumentNotFound: (404)
    """
    async with runtime.database.session() as session:
        versions = await service.versions_of(session, principal.issuer_id, document_id)
    return versions


async def issuer_file(
    runtime: Runtime, principal: DepartmentPrincipal, document_id: str, version: int | None
) -> tuple[VaultDocument, AsyncIterator[bytes]]:
    """The file of one of the issuer's documents, decrypted and streamed as the holder's
    download is (`service.content`): `version`, or the newest. The employer downloads a
    labour contract the holder signed here; the session is closed before the file streams.

    A download is someone else's read of the holder's document: it is in the holder's access
    log (`app.accesslog.recorder`), with the issuer's name.

    :raises DocumentNotFound: not this issuer's document, or no such version (404, the same
        answer as for an unknown document).
    :raises CorruptDocument: (500) the stored file cannot be opened.
    """
    async with runtime.database.session() as session:
        versions = await service.versions_of(session, principal.issuer_id, document_id)
        found = [stored for stored in versions if version in (None, stored.version)]
        if not found:
            raise DocumentNotFound(f"no version {version} of document {document_id[:128]!r}")
        document = found[0]
        card = (
            await session.exec(select(Card).where(Card.person_id == document.person_id))
        ).first()
    chunks = await service.content(runtime, document)
    if card is not None:
        await record(
            runtime.store,
            ISSUER_DOWNLOADED,
            principal.client_id,
            str(card.id),
            {
                "document": str(document.id),
                "doc_type": document.doc_type,
                "purpose": document.issuer_name,
            },
        )
    return document, chunks


async def revoke(
    runtime: Runtime, principal: DepartmentPrincipal, document_id: str, reason: str
) -> VaultDocument:
    async with runtime.database.session() as session:
        document = await service.revoke(session, principal.issuer_id, document_id, reason)
    return document
