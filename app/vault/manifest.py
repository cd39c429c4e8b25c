"""The issuer's manifest of a document: what it signs, checked field by field.

The issuer signs the manifest (not the file): it names the file by its SHA-256 and size, so
the signature covers the file, and the manifest can travel in a header while the file
streams in the body. Fields:

    document_id     the issuer's own id (1-128 of A-Z a-z 0-9 . _ : -)
    version         1, 2, ... (a higher version supersedes; history is kept)
    type            a vault document type (`app.vault.types`)
    holder          {"document_type": "resident_id", "document_number": "..."}
    title           1-200 characters, shown and searchable: no personal data in it
    issued_at       RFC 3339 time; valid_until optional
    summary         {field: text}: the type's public fields are stored in the clear and
                    searchable, every other field is sealed
    content         {"type": "application/pdf" | "application/ofd" | "application/json",
                     "sha256": hex, "size": bytes}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.vault.content import CONTENT_TYPES
from app.vault.errors import InvalidDocument
from app.vault.types import (
    DOCUMENT_TYPES,
    MAX_SUMMARY_FIELDS,
    MAX_SUMMARY_VALUE_CHARS,
    DocumentType,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Manifest:
    document_id: str
    version: int
    doc_type: DocumentType
    holder_document_type: str
    holder_document_number: str
    title: str
    issued_at: datetime
    valid_until: datetime | None
    summary: Mapping[str, str]
    content_type: str
    content_sha256: str
    content_size: int


def _text(payload: Mapping[str, Any], name: str, *, limit: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidDocument(f"{name}: a text of 1 to {limit} characters", field=name)
    if _CONTROL.search(value):
        raise InvalidDocument(f"{name}: no control characters", field=name)
    return value


def _time(payload: Mapping[str, Any], name: str, *, required: bool) -> datetime | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    try:
        parsed = datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidDocument(f"{name}: an RFC 3339 time with its offset", field=name)
    return parsed.astimezone(UTC)


def parse_manifest(payload: object) -> Manifest:
    """:raises InvalidDocument: naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidDocument("the manifest must be a JSON object")
    document_id = payload.get("document_id")
    if not isinstance(document_id, str) or not _ID.fullmatch(document_id):
        raise InvalidDocument(
            "document_id: 1-128 of A-Z a-z 0-9 . _ : - (the issuer's own id)", field="document_id"
        )
    version = payload.get("version")
    if type(version) is not int or not 1 <= version <= 1_000_000:
        raise InvalidDocument("version: an integer from 1", field="version")
    doc_type = DOCUMENT_TYPES.get(str(payload.get("type")))
    if doc_type is None:
        raise InvalidDocument(
            f"type: one of {', '.join(DOCUMENT_TYPES)}", field="type", accepted=list(DOCUMENT_TYPES)
        )
    holder = payload.get("holder")
    if not isinstance(holder, Mapping):
        raise InvalidDocument("holder: {document_type, document_number}", field="holder")
    holder_type = _text(holder, "document_type", limit=40)
    holder_number = _text(holder, "document_number", limit=40)
    summary = payload.get("summary", {})
    if not isinstance(summary, Mapping) or len(summary) > MAX_SUMMARY_FIELDS:
        raise InvalidDocument(
            f"summary: an object of at most {MAX_SUMMARY_FIELDS} fields", field="summary"
        )
    for key, value in summary.items():
        if not _FIELD.fullmatch(str(key)) or not isinstance(value, str) or _CONTROL.search(value):
            raise InvalidDocument(f"summary.{str(key)[:40]}: a text field", field="summary")
        if len(value) > MAX_SUMMARY_VALUE_CHARS:
            raise InvalidDocument(
                f"summary.{key}: at most {MAX_SUMMARY_VALUE_CHARS} characters", field="summary"
            )
    content = payload.get("content")
    if not isinstance(content, Mapping):
        raise InvalidDocument("content: {type, sha256, size}", field="content")
    content_type = content.get("type")
    if content_type not in CONTENT_TYPES:
        raise InvalidDocument(
            f"content.type: one of {', '.join(CONTENT_TYPES)}", field="content.type"
        )
    sha256 = content.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidDocument("content.sha256: 64 lower-case hex digits", field="content.sha256")
    size = content.get("size")
    if type(size) is not int or size < 0:
        raise InvalidDocument("content.size: the file's size in bytes", field="content.size")
    issued_at = _time(payload, "issued_at", required=True)
    assert issued_at is not None
    return Manifest(
        document_id=document_id,
        version=version,
        doc_type=doc_type,
        holder_document_type=holder_type,
        holder_document_number=holder_number,
        title=_text(payload, "title", limit=MAX_TITLE_CHARS),
        issued_at=issued_at,
        valid_until=_time(payload, "valid_until", required=False),
        summary=dict(summary),
        content_type=str(content_type),
        content_sha256=sha256,
        content_size=size,
    )
