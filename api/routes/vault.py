"""The HR e-document vault: the holder's documents and shares, and opening a share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from starlette.responses import StreamingResponse

from api.auth import CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.common import Rfc3339DateTime
from api.schemas.vault import (
    DocumentDetailOut,
    DocumentListOut,
    DocumentOut,
    ShareCreate,
    ShareCreated,
    ShareListOut,
    ShareOut,
)
from app.cards.models import utcnow
from app.runtime import Runtime
from app.vault import service, shares
from app.vault.models import VaultDocument, VaultShare
from app.vault.types import DOCUMENT_TYPES
from qr.render import render

router = APIRouter(tags=["document vault"], route_class=StrictJsonRoute)

NO_STORE = {"Cache-Control": "no-store"}
_FILE_CONTENT = {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    "application/ofd": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {}},
}
_SHARE_ID = Path(
    pattern=r"^shr_[A-Za-z0-9_-]{43}$", description="The share's secret id, from its link"
)


def document_out(document: VaultDocument) -> DocumentOut:
    kind = DOCUMENT_TYPES.get(document.doc_type)
    return DocumentOut(
        id=document.id,
        type=document.doc_type,
        type_label=kind.label if kind is not None else document.doc_type,
        title=document.title,
        issuer=document.issuer,
        issuer_name=document.issuer_name,
        issuer_document_id=document.issuer_document_id,
        version=document.version,
        current=document.current,
        status=document.status,
        issued_at=document.issued_at,
        valid_until=document.valid_until,
        summary=dict(document.summary),
        content_type=document.content_type,
        size=document.size,
        sha256=document.sha256,
        revoked_at=document.revoked_at,
        revocation_reason=document.revocation_reason,
        holder_signed_at=document.holder_signed_at,
        holder_signature_kind=document.holder_signature_kind,
    )


def share_out(share: VaultShare) -> ShareOut:
    return ShareOut(
        id=share.id,
        purpose=share.purpose,
        one_time=share.one_time,
        created_at=share.created_at,
        expires_at=share.expires_at,
        revoked_at=share.revoked_at,
        opened_count=share.opened_count,
        state=shares.share_state(share, utcnow()),
    )


def file_response(
    document: VaultDocument, chunks: AsyncIterator[bytes], headers: dict[str, str]
) -> StreamingResponse:
    """The decrypted file, streamed, with its length and digest (the recipient can check the
    bytes against the signed SHA-256)."""
    extension = {"application/pdf": "pdf", "application/ofd": "ofd"}.get(
        document.content_type, "json"
    )
    filename = f"{document.doc_type}-{document.id}.{extension}"
    return StreamingResponse(
        chunks,
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-SHA256": document.sha256,
            **NO_STORE,
            **headers,
        },
    )


@router.get(
    "/v1/me/documents",
    summary="Your documents: filter by type, issuer, issue date; search titles with ?q=",
    response_model=DocumentListOut,
    responses={403: {"description": "device-unbound"}},
)
async def my_documents(
    holder: CurrentHolder,
    session: SessionDep,
    *,
    type: Annotated[str | None, Query(max_length=40, description="A document type")] = None,
    issuer: Annotated[str | None, Query(max_length=64, description="An issuer's client id")] = None,
    issued_from: Annotated[Rfc3339DateTime | None, Query(description="Issued at or after")] = None,
    issued_to: Annotated[Rfc3339DateTime | None, Query(description="Issued before")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Full-text search over titles and public summary fields (personal "
            "fields are sealed and not searchable); Chinese matched by character pairs",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIST)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> DocumentListOut:
    """Current versions only (older versions are in each document's `history`); revoked
    documents stay listed, with `status: revoked`."""
    wanted = service.DocumentFilter(
        doc_type=type,
        issuer=issuer,
        issued_from=issued_from,
        issued_to=issued_to,
        query=q,
        limit=limit,
        offset=offset,
    )
    documents = await service.list_documents(session, holder, wanted)
    return DocumentListOut(items=[document_out(document) for document in documents])


@router.get(
    "/v1/me/documents/{document_id}",
    summary="One of your documents, with its personal fields, signatures and history",
    response_model=DocumentDetailOut,
    responses={403: {"description": "device-unbound"}, 404: {"description": "document-not-found"}},
)
async def my_document(
    document_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> DocumentDetailOut:
    document = await service.holder_document(session, holder, document_id)
    versions = await service.history(session, document)
    return detail_out(runtime, document, versions)


def detail_out(
    runtime: Runtime, document: VaultDocument, versions: list[VaultDocument]
) -> DocumentDetailOut:
    return DocumentDetailOut(
        **document_out(document).model_dump(),
        personal=service.personal_fields(runtime, document),
        issuer_signature=service.issuer_signature(runtime, document),
        holder_signature=service.holder_signature(runtime, document),
        history=[document_out(version) for version in versions],
    )


@router.get(
    "/v1/me/documents/{document_id}/content",
    summary="Download the original file (decrypted, streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": _FILE_CONTENT, "description": "The original file, byte for byte"},
        403: {"description": "device-unbound"},
        404: {"description": "document-not-found"},
    },
)
async def my_document_content(
    document_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> StreamingResponse:
    document = await service.holder_document(session, holder, document_id)
    await session.close()  # the transaction is not held open while the file streams
    return file_response(document, await service.content(runtime, document), {})


@router.post(
    "/v1/me/documents/{document_id}/shares",
    summary="Share a document: a link and QR with an expiry, a purpose, optionally one-time",
    status_code=201,
    response_model=ShareCreated,
    responses={403: {"description": "device-unbound"}, 404: {"description": "document-not-found"}},
)
async def share_document(
    document_id: uuid.UUID,
    body: ShareCreate,
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ShareCreated:
    """The recipient opens the link (`GET /v1/shares/{share_id}`) to download the document
    and check it; the share and every opening are in your access log."""
    created = await shares.create_share(
        session,
        runtime,
        holder,
        document_id,
        purpose=body.purpose,
        ttl_seconds=body.expires_in,
        one_time=body.one_time,
    )
    await session.commit()
    url = f"{runtime.settings.public_url.rstrip('/')}/v1/shares/{created.secret}"
    return ShareCreated(
        **share_out(created.share).model_dump(),
        share_id=created.secret,
        url=url,
        qr_svg=render(url, "svg", scale=4).decode(),
    )


@router.get(
    "/v1/me/documents/{document_id}/shares",
    summary="The shares of a document and their state",
    response_model=ShareListOut,
    responses={403: {"description": "device-unbound"}, 404: {"description": "document-not-found"}},
)
async def document_shares(
    document_id: uuid.UUID, holder: CurrentHolder, session: SessionDep
) -> ShareListOut:
    found = await shares.list_shares(session, holder, document_id)
    return ShareListOut(items=[share_out(share) for share in found])


@router.delete(
    "/v1/me/documents/{document_id}/shares/{share_ref}",
    summary="Revoke a share at once",
    response_model=ShareOut,
    responses={
        403: {"description": "device-unbound"},
        404: {"description": "document-not-found, share-not-found"},
    },
)
async def revoke_share(
    document_id: uuid.UUID,
    share_ref: uuid.UUID,
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ShareOut:
    share = await shares.revoke_share(session, runtime, holder, document_id, share_ref)
    await session.commit()
    return share_out(share)


@router.get(
    "/v1/shares/{share_id}",
    summary="Open a share: the document, with the issuer's signature and our attestation",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": _FILE_CONTENT,
            "description": "The original file. `X-Vault-Attestation`: our JWS (ES256, keys in "
            "/.well-known/jwks.json) on the document, its SHA-256, its status (revoked or "
            "not), whether the issuer's signature verifies, and the holder's masked name and "
            "card number; `X-Issuer-Signature`: the issuer's signed manifest (JWS); "
            "`X-Document-Status`: valid, revoked or superseded",
        },
        404: {"description": "share-not-found: unknown, expired, revoked or used up"},
    },
)
async def open_share(share_id: Annotated[str, _SHARE_ID], runtime: RuntimeDep) -> StreamingResponse:
    """The share id is the capability: no account is needed. A one-time share opens once."""
    opened = await shares.open_share(runtime, share_id, _issuer_check(runtime))
    return file_response(
        opened.document,
        opened.chunks,
        {
            "X-Vault-Attestation": opened.attestation,
            "X-Issuer-Signature": opened.issuer_signature,
            "X-Document-Status": opened.document.status,
        },
    )


def _issuer_check(runtime: Runtime) -> shares.IssuerCheck:
    """Until issuing departments' keys are registered with us, a stored signature was verified
    on ingest and is reported valid."""
    del runtime
    return lambda signature, document: bool(signature)
