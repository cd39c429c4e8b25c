"""The HR e-document vault: the holder's documents and shares, and opening a share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, StreamingResponse

from api.auth import ConsentingIssuer, CurrentHolder, CurrentIssuer
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.problems import domain_problem
from api.schemas.common import Rfc3339DateTime
from api.schemas.vault import (
    BulkLineOut,
    BulkOut,
    DocumentDetailOut,
    DocumentListOut,
    DocumentOut,
    IssuerDocumentOut,
    IssuerVersionOut,
    PushedOut,
    RevocationIn,
    ShareCreate,
    ShareCreated,
    ShareListOut,
    ShareOut,
    SignatureOut,
    SignIn,
)
from app.cards.models import utcnow
from app.consents.models import ConsentRequest
from app.consents.service import require_consent
from app.media_types import media_type_of
from app.runtime import Runtime
from app.vault import contracts, push, service, shares
from app.vault.content import CONTENT_TYPES
from app.vault.errors import (
    DocumentNotFound,
    IncompleteUpload,
    InvalidDocument,
    UnsupportedContent,
)
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
    type: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="A document type")
    ] = None,
    issuer: Annotated[
        str | None,
        Query(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$", description="An issuer's code"),
    ] = None,
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
    opened = await shares.open_share(runtime, share_id)
    return file_response(
        opened.document,
        opened.chunks,
        {
            "X-Vault-Attestation": opened.attestation,
            "X-Issuer-Signature": opened.issuer_signature,
            "X-Document-Status": opened.document.status,
        },
    )


# --- issuers -------------------------------------------------------------------------------

PUSH_PATH = "/v1/documents"
"""Streams large bodies: the middleware lets them through up to twice the vault's limits,
which the route enforces with its own problem."""
JSONL_TYPES = ("application/jsonl", "application/x-ndjson")
_ISSUER_DOCUMENT_ID = Path(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="Your own id of the document"
)
_PUSH_BODY = {
    "required": True,
    "description": "One file (PDF, OFD or JSON) with its signed manifest in the "
    "`Document-Signature` header, or many as JSONL: one "
    '`{"signature": "<JWS>", "content": "<base64>"}` a line',
    "content": {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        "application/ofd": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {}},
        "application/jsonl": {"schema": {"type": "string"}},
    },
}


def pushed_out(document: VaultDocument, created: bool) -> PushedOut:
    return PushedOut(
        id=document.id,
        document_id=document.issuer_document_id,
        version=document.version,
        status=document.status,
        created=created,
        sha256=document.sha256,
        size=document.size,
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect:
        raise IncompleteUpload("the upload ended before the whole file arrived") from None


@router.post(
    "/v1/documents",
    summary="Push documents: one file with its signed manifest, or many as JSONL",
    status_code=201,
    response_model=PushedOut,
    openapi_extra={"requestBody": _PUSH_BODY},
    responses={
        200: {
            "description": "This version was stored before (an idempotent retry); for a JSONL "
            "body: a result per line",
            "model": PushedOut | BulkOut,
        },
        403: {"description": "document-type-not-allowed"},
        404: {"description": "unknown-holder"},
        409: {"description": "duplicate-document, stale-version"},
        413: {"description": "document-too-large (SSC_VAULT_MAX_DOCUMENT_BYTES)"},
        415: {"description": "unsupported-content: not PDF, OFD or JSON by its bytes"},
        422: {
            "description": "signature-rejected, invalid-vault-document, content-mismatch, "
            "incomplete-upload"
        },
    },
)
async def push_documents(
    request: Request,
    issuer: CurrentIssuer,
    runtime: RuntimeDep,
    document_signature: Annotated[
        str | None,
        Header(
            max_length=32768,
            description="The signed manifest (JWS over RFC 8785 JSON) of a single file",
        ),
    ] = None,
) -> JSONResponse:
    """The manifest names the holder (identity document), the type, title, dates, summary
    fields and the file's SHA-256 and size; the file streams in the body and is stored
    encrypted. Idempotent per (document id, version); a higher version supersedes (the old one
    stays as history)."""
    media = media_type_of(request.headers.get("content-type"))
    if media in JSONL_TYPES:
        results = await push.push_bulk(runtime, issuer, _body(request))
        lines = [
            BulkLineOut(
                line=item.line,
                status=item.status,
                document=None if item.document is None else pushed_out(item.document, item.created),
                problem=None if item.error is None else domain_problem(item.error),
            )
            for item in results
        ]
        bulk = BulkOut(
            stored=sum(1 for item in results if item.status == 201),
            unchanged=sum(1 for item in results if item.status == 200),
            refused=sum(1 for item in results if item.status >= 400),
            results=lines,
        )
        return JSONResponse(bulk.model_dump(mode="json"), status_code=200)
    if media not in CONTENT_TYPES:
        raise UnsupportedContent(
            f"send a PDF, OFD or JSON file, or JSONL; not {media[:80] or 'no content type'}",
            accepted=[*CONTENT_TYPES, *JSONL_TYPES],
        )
    if document_signature is None:
        raise InvalidDocument(
            "a single file needs its signed manifest in the Document-Signature header",
            field="Document-Signature",
        )
    outcome = await push.push(runtime, issuer, document_signature, _body(request), media)
    return JSONResponse(
        pushed_out(outcome.document, outcome.created).model_dump(mode="json"),
        status_code=201 if outcome.created else 200,
    )


def issuer_version_out(runtime: Runtime, document: VaultDocument) -> IssuerVersionOut:
    return IssuerVersionOut(
        id=document.id,
        version=document.version,
        current=document.current,
        status=document.status,
        type=document.doc_type,
        title=document.title,
        sha256=document.sha256,
        size=document.size,
        issued_at=document.issued_at,
        revoked_at=document.revoked_at,
        issuer_signature=service.issuer_signature(runtime, document),
        holder_signature=service.holder_signature(runtime, document),
        holder_signature_kind=document.holder_signature_kind,
        holder_signed_at=document.holder_signed_at,
    )


@router.get(
    "/v1/documents/{document_id}",
    summary="One of your pushed documents: every version, with both signatures of a contract",
    response_model=IssuerDocumentOut,
    responses={404: {"description": "document-not-found"}},
)
async def issuer_document(
    document_id: Annotated[str, _ISSUER_DOCUMENT_ID], issuer: CurrentIssuer, runtime: RuntimeDep
) -> IssuerDocumentOut:
    versions = await push.issuer_documents(runtime, issuer, document_id)
    return IssuerDocumentOut(
        document_id=document_id,
        versions=[issuer_version_out(runtime, version) for version in versions],
    )


@router.get(
    "/v1/documents/{document_id}/content",
    summary="Download the file of a document you pushed (decrypted, streamed): a labour "
    "contract as both parties signed it",
    response_class=StreamingResponse,
    responses={
        200: {"content": _FILE_CONTENT, "description": "The original file, byte for byte"},
        404: {"description": "document-not-found (not yours, or no such version)"},
    },
)
async def issuer_document_content(
    document_id: Annotated[str, _ISSUER_DOCUMENT_ID],
    issuer: CurrentIssuer,
    runtime: RuntimeDep,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="A version; the newest when absent")
    ] = None,
) -> StreamingResponse:
    """Only the issuer that pushed the document; check the bytes against `X-Content-SHA256`
    and both signatures (`X-Issuer-Signature`, and `X-Holder-Signature` once the holder signed
    a contract; also in `GET /v1/documents/{document_id}`)."""
    document, chunks = await push.issuer_file(runtime, issuer, document_id, version)
    headers = {
        "X-Document-Version": str(document.version),
        "X-Issuer-Signature": service.issuer_signature(runtime, document),
    }
    holder_signature = service.holder_signature(runtime, document)
    if holder_signature is not None:
        headers["X-Holder-Signature"] = holder_signature
    return file_response(document, chunks, headers)


@router.post(
    "/v1/documents/{document_id}/revocation",
    summary="Revoke a document: it stays visible to its holder, marked revoked",
    response_model=IssuerVersionOut,
    responses={404: {"description": "document-not-found"}},
)
async def revoke_document(
    document_id: Annotated[str, _ISSUER_DOCUMENT_ID],
    body: RevocationIn,
    issuer: CurrentIssuer,
    runtime: RuntimeDep,
) -> IssuerVersionOut:
    document = await push.revoke(runtime, issuer, document_id, body.reason)
    return issuer_version_out(runtime, document)


# --- labour contracts: the holder's signature ----------------------------------------------


def signature_out(runtime: Runtime, view: contracts.SignatureView) -> SignatureOut:
    return SignatureOut(
        document_id=view.document.id,
        method=view.method.value,
        statement=view.statement,
        signature=view.signature,
        signed_at=view.document.holder_signed_at,
        employer_signature=service.issuer_signature(runtime, view.document),
    )


@router.get(
    "/v1/me/documents/{document_id}/signature",
    summary="A labour contract: what you sign (and how), or your signature once made",
    response_model=SignatureOut,
    responses={
        403: {"description": "device-unbound"},
        404: {"description": "document-not-found"},
        422: {"description": "not-a-contract"},
    },
)
async def contract_signature(
    document_id: uuid.UUID, holder: CurrentHolder, runtime: RuntimeDep
) -> SignatureOut:
    return signature_out(runtime, await contracts.signature_view(runtime, holder, document_id))


@router.post(
    "/v1/me/documents/{document_id}/signature",
    summary="Sign a labour contract, confirmed with your PIN",
    status_code=201,
    response_model=SignatureOut,
    responses={
        401: {"description": "invalid-credentials (wrong PIN)"},
        403: {"description": "device-unbound"},
        404: {"description": "document-not-found"},
        409: {"description": "contract-already-signed"},
        422: {"description": "not-a-contract, invalid-holder-signature"},
        423: {"description": "pin-locked, with `unlocks_at`"},
    },
)
async def sign_contract(
    document_id: uuid.UUID, body: SignIn, holder: CurrentHolder, runtime: RuntimeDep
) -> SignatureOut:
    """With a phone key registered at activation, send the phone's JWS of the statement of
    `GET .../signature`; without one, we sign on your behalf, bound to this session."""
    await contracts.sign_contract(
        runtime, holder, document_id, pin=body.pin, device_signature=body.signature
    )
    return signature_out(runtime, await contracts.signature_view(runtime, holder, document_id))


# --- departments reading with the holder's consent ------------------------------------------


@router.get(
    "/v1/consent-requests/{request_id}/documents",
    summary="The holder's vault documents of the consented types (while the consent holds)",
    response_model=DocumentListOut,
    responses={403: {"description": "consent-required (audited)"}},
)
async def consented_documents(
    request_id: uuid.UUID, issuer: ConsentingIssuer, session: SessionDep, runtime: RuntimeDep
) -> DocumentListOut:
    """Each read is in the holder's access log (a department read, with the purpose)."""
    request, card = await require_consent(session, runtime, issuer, request_id)
    documents = await service.consented_documents(session, card.person_id, request.items)
    return DocumentListOut(items=[document_out(document) for document in documents])


@router.get(
    "/v1/consent-requests/{request_id}/documents/{document_id}/content",
    summary="Download one consented vault document (decrypted, streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": _FILE_CONTENT, "description": "The original file, byte for byte"},
        403: {"description": "consent-required (audited): its type is not consented"},
        404: {"description": "document-not-found"},
    },
)
async def consented_document_content(
    request_id: uuid.UUID,
    document_id: uuid.UUID,
    issuer: ConsentingIssuer,
    session: SessionDep,
    runtime: RuntimeDep,
) -> StreamingResponse:
    document = await session.get(VaultDocument, document_id)
    consent = await session.get(ConsentRequest, request_id)
    if document is None or (consent is not None and document.person_id != consent.person_id):
        raise DocumentNotFound("no such document of this holder")  # before a read is logged
    await require_consent(session, runtime, issuer, request_id, [document.doc_type])
    await session.close()
    return file_response(
        document,
        await service.content(runtime, document),
        {"X-Issuer-Signature": service.issuer_signature(runtime, document)},
    )
