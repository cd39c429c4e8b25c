"""Bodies of the document vault's routes."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PIN_PATTERN, UtcDateTime

DocumentStatusOut = Literal["valid", "revoked", "superseded"]
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
"""One line of text with something visible in it: no control characters (PostgreSQL refuses
NUL in text), not only white space."""


class DocumentOut(BaseModel):
    id: uuid.UUID
    type: str = Field(description="employment_record, labour_contract, ... (extensible)")
    type_label: str
    title: str
    issuer: str = Field(description="The issuing department's client id")
    issuer_name: str
    issuer_document_id: str
    version: int
    current: bool = Field(description="False: an older version (history)")
    status: DocumentStatusOut
    issued_at: UtcDateTime
    valid_until: UtcDateTime | None
    summary: dict[str, str] = Field(description="The type's public summary fields")
    content_type: str
    size: int
    sha256: str = Field(description="SHA-256 of the original file, hex")
    revoked_at: UtcDateTime | None = None
    revocation_reason: str | None = None
    holder_signed_at: UtcDateTime | None = None
    holder_signature_kind: Literal["device", "server"] | None = None


class DocumentDetailOut(DocumentOut):
    personal: dict[str, str] = Field(description="The personal summary fields (sealed at rest)")
    issuer_signature: str = Field(description="The issuer's signed manifest, JWS compact")
    holder_signature: str | None = Field(
        default=None, description="A labour contract's holder signature, JWS compact"
    )
    history: list[DocumentOut] = Field(description="Every version, newest first")


class DocumentListOut(BaseModel):
    items: list[DocumentOut]


class ShareCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"purpose": "入职审核 (hiring check)", "expires_in": 86400, "one_time": True}
            ]
        },
    )

    purpose: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    expires_in: int = Field(ge=60, le=365 * 24 * 3600, description="Seconds until the link ends")
    one_time: bool = False


class ShareOut(BaseModel):
    id: uuid.UUID = Field(description="To revoke the share; not the link's secret")
    purpose: str
    one_time: bool
    created_at: UtcDateTime
    expires_at: UtcDateTime
    revoked_at: UtcDateTime | None
    opened_count: int
    state: Literal["active", "expired", "revoked", "used"]


class ShareCreated(ShareOut):
    share_id: str = Field(description="The link's secret id; shown once, only its HMAC is kept")
    url: str = Field(description="The link for the recipient: GET it to download and check")
    qr_svg: str = Field(description="The link as a QR code (SVG)")


class ShareListOut(BaseModel):
    items: list[ShareOut]


class PushedOut(BaseModel):
    id: uuid.UUID = Field(description="The vault's id of the stored version")
    document_id: str = Field(description="The issuer's own id")
    version: int
    status: DocumentStatusOut
    created: bool = Field(description="False: this version was stored before (a retry)")
    sha256: str
    size: int


class BulkLineOut(BaseModel):
    line: int
    status: int = Field(description="201 stored, 200 stored before, else the problem's status")
    document: PushedOut | None = None
    problem: dict[str, object] | None = None


class BulkOut(BaseModel):
    stored: int
    unchanged: int
    refused: int
    results: list[BulkLineOut]


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "错发"}]})

    reason: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)


class IssuerVersionOut(BaseModel):
    id: uuid.UUID
    version: int
    current: bool
    status: DocumentStatusOut
    type: str
    title: str
    sha256: str
    size: int
    issued_at: UtcDateTime
    revoked_at: UtcDateTime | None
    issuer_signature: str = Field(description="Your signed manifest as stored (JWS)")
    holder_signature: str | None = Field(
        description="A labour contract's holder signature (JWS), once the holder signed"
    )
    holder_signature_kind: Literal["device", "server"] | None
    holder_signed_at: UtcDateTime | None


class IssuerDocumentOut(BaseModel):
    document_id: str
    versions: list[IssuerVersionOut] = Field(description="Newest first")


class SignatureOut(BaseModel):
    document_id: uuid.UUID
    method: Literal["device", "server"] = Field(
        description="device: your phone signs with its registered key; server: we sign on "
        "your behalf, bound to this PIN-confirmed session"
    )
    statement: dict[str, object] = Field(
        description="What is signed: sign exactly this (RFC 8785 canonical JSON) as a JWS "
        "(ES256, typ ssc-document+jws, kid device:<device id>) when method is device"
    )
    signature: str | None = Field(description="The holder signature (JWS), once signed")
    signed_at: UtcDateTime | None
    employer_signature: str = Field(description="The employer's signed manifest (JWS)")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pin": "284617"}]})

    pin: str = Field(pattern=PIN_PATTERN, description="The card's 6-digit PIN")
    signature: str | None = Field(
        default=None,
        max_length=8192,
        description="With method device: the phone's JWS of the statement (about 1 KB)",
    )
