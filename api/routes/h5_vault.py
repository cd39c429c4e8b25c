"""The holder's document vault on the mobile pages: the list (by type, or a search of the
titles), one document with its fields and download, and its shares: create one (the link
and its QR are shown once, never put in a URL), see them, revoke one. The rules are
`app.vault`'s; the file is streamed as the API streams it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from api.deps import SessionDep
from api.h5.messages import local_time, refusal
from api.h5.pages import BASE, HolderForm, HolderPage, PageContext
from api.h5.qr import svg_path
from api.h5.texts import field_label
from api.routes.vault import file_response
from api.schemas.vault import ShareCreate
from app.cards.models import utcnow
from app.errors import DomainError, InvalidRequest
from app.vault import service, shares
from app.vault.errors import DocumentNotFound, ShareNotFound
from app.vault.models import VaultDocument
from app.vault.types import DOCUMENT_TYPES
from qr import modules

router = APIRouter(include_in_schema=False)

DOCUMENTS_SHOWN = 20
DOCUMENTS_SHOWN_CARE = 5
"""Elder mode shows fewer documents per screen."""
SHARE_DAYS = (1, 7, 30)
"""The expiries offered (days); the longest allowed is `SSC_VAULT_SHARE_MAX_TTL`."""
DONE = {"revoked": "share_revoked"}


def type_label(context: PageContext, doc_type: str) -> str:
    kind = DOCUMENT_TYPES.get(doc_type)
    if context.language == "zh" and kind is not None:
        return kind.label
    return doc_type.replace("_", " ").capitalize()


@router.get(f"{BASE}/documents")
async def documents_page(
    context: HolderPage,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The type filter and the title search are a GET form: a document type and words of a
    title, nothing about the holder."""
    doc_type = type if type in DOCUMENT_TYPES else None
    query = (q or "").strip() or None
    wanted = service.DocumentFilter(
        doc_type=doc_type,
        query=query,
        limit=DOCUMENTS_SHOWN_CARE if context.care else DOCUMENTS_SHOWN,
    )
    documents = await service.list_documents(session, context.holder_page.holder, wanted)
    return context.render(
        "documents.html",
        title=context.t("documents"),
        back="card",
        documents=documents,
        types=[(name, type_label(context, name)) for name in DOCUMENT_TYPES],
        chosen_type=doc_type or "",
        query=query or "",
        type_label=lambda name: type_label(context, name),
        local_time=local_time,
    )


async def _document_page(
    context: PageContext,
    session: AsyncSession,
    document: VaultDocument,
    *,
    status_code: int = 200,
    message: str | None = None,
    kind: str = "done",
    created: dict[str, object] | None = None,
) -> Response:
    found = await shares.list_shares(session, context.holder_page.holder, document.id)
    now = utcnow()
    max_days = context.runtime.settings.vault_share_max_ttl // 86400
    return context.render(
        "document.html",
        status_code=status_code,
        title=document.title,
        back="documents",
        document=document,
        type_label=type_label(context, document.doc_type),
        personal=service.personal_fields(context.runtime, document),
        field_label=lambda name: field_label(name, context.language),
        shares=[(share, shares.share_state(share, now)) for share in found],
        share_days=[days for days in SHARE_DAYS if days <= max_days] or [1],
        created=created,
        local_time=local_time,
        message=message,
        kind=kind,
    )


@router.get(f"{BASE}/documents/{{document_id}}")
async def document_page(
    context: HolderPage, session: SessionDep, document_id: uuid.UUID, done: str | None = None
) -> Response:
    """Another holder's document is not found: back to one's own list."""
    try:
        document = await service.holder_document(session, context.holder_page.holder, document_id)
    except DocumentNotFound:
        return context.redirect(f"{BASE}/documents")
    message = context.t(DONE[done]) if done in DONE else None
    return await _document_page(context, session, document, message=message)


@router.get(f"{BASE}/documents/{{document_id}}/content")
async def document_content(
    context: HolderPage, session: SessionDep, document_id: uuid.UUID
) -> Response:
    """The original file, decrypted and streamed as `GET /v1/me/documents/{id}/content`."""
    try:
        document = await service.holder_document(session, context.holder_page.holder, document_id)
    except DocumentNotFound:
        return context.redirect(f"{BASE}/documents")
    await session.close()  # the transaction is not held open while the file streams
    return context.finish(
        file_response(document, await service.content(context.runtime, document), {})
    )


def _share_form(context: PageContext) -> ShareCreate:
    try:
        days = int(context.field("days") or "0")
        return ShareCreate(
            purpose=context.field("purpose"),
            expires_in=days * 86400,
            one_time=context.field("one_time") == "1",
        )
    except (ValueError, ValidationError) as error:
        raise InvalidRequest("a share needs a purpose and an expiry") from error


@router.post(f"{BASE}/documents/{{document_id}}/shares")
async def create_share(
    context: HolderForm, session: SessionDep, document_id: uuid.UUID
) -> Response:
    """Shows the link and its QR once, on this answer (not a redirect: the link's secret is
    never in an address, and only its hash is kept)."""
    holder = context.holder_page.holder
    try:
        document = await service.holder_document(session, holder, document_id)
    except DocumentNotFound:
        return context.redirect(f"{BASE}/documents")
    try:
        form = _share_form(context)
        made = await shares.create_share(
            session,
            context.runtime,
            holder,
            document.id,
            purpose=form.purpose,
            ttl_seconds=form.expires_in,
            one_time=form.one_time,
        )
    except DomainError as error:
        return await _document_page(
            context,
            session,
            document,
            status_code=error.status,
            message=refusal(context, error),
            kind="error",
        )
    await session.commit()
    url = f"{context.runtime.settings.public_url.rstrip('/')}/v1/shares/{made.secret}"
    rows = modules(url, large_high_contrast=context.care)
    return await _document_page(
        context,
        session,
        document,
        status_code=201,
        message=context.t("share_created"),
        created={"url": url, "size": len(rows), "path": svg_path(rows)},
    )


@router.post(f"{BASE}/documents/{{document_id}}/shares/revoke")
async def revoke_share(
    context: HolderForm, session: SessionDep, document_id: uuid.UUID
) -> Response:
    try:
        share_id = uuid.UUID(context.field("share_id"))
        await shares.revoke_share(
            session, context.runtime, context.holder_page.holder, document_id, share_id
        )
    except (ValueError, DocumentNotFound, ShareNotFound):
        return context.redirect(f"{BASE}/documents")
    await session.commit()
    return context.redirect(f"{BASE}/documents/{document_id}?done=revoked")
