"""Request and response bodies of linked e-licences."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import UtcDateTime
from token_service.jws import MAX_JWS_CHARS

SignedDocument = Annotated[
    str,
    StringConstraints(min_length=5, max_length=MAX_JWS_CHARS, pattern=r"^[A-Za-z0-9_.-]+$"),
]


class LicencePush(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"signed": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"}]},
    )

    signed: SignedDocument = Field(
        description="JWS compact over the RFC 8785 canonical licence (docs/licences.md)"
    )


class LicencePushed(BaseModel):
    licence_id: uuid.UUID
    result: str = Field(description="created, updated (a newer version) or unchanged (a retry)")
    document_id: str
    version: int
    status: str


class LineError(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    extensions: dict[str, Any] = Field(default_factory=dict)


class BulkLine(BaseModel):
    line: int = Field(description="1-based line number in the request body")
    pushed: LicencePushed | None = None
    error: LineError | None = None


class BulkResult(BaseModel):
    stored: int = Field(description="Lines created or updated")
    unchanged: int
    failed: int
    results: list[BulkLine]


class Verification(BaseModel):
    verified: bool = Field(
        description="All of: signature valid, key trusted, status valid, within validity"
    )
    signature_valid: bool
    key_trusted: bool = Field(description="Signed by a key of the issuer that is not revoked")
    status: str = Field(description="valid, suspended, revoked or expired")
    expired: bool
    reason: str | None = Field(
        description="Why not verified: a signature reason, suspended, revoked, expired, "
        "not_yet_valid"
    )
    checked_at: UtcDateTime


class IssuerRef(BaseModel):
    code: str
    name: str


class LicenceOut(BaseModel):
    id: uuid.UUID
    type: str
    type_title: str
    type_title_zh: str
    issuer: IssuerRef
    number: str
    holder_name: str
    category: str | None
    valid_from: date
    valid_until: date | None
    version: int
    updated_at: UtcDateTime
    verification: Verification


class LicenceDetail(LicenceOut):
    document_id: str
    signed: str = Field(description="The department's signed original, verbatim")


class PresentationOut(BaseModel):
    token: str = Field(description="SSC1 token to show as a QR code (single use)")
    licence_id: uuid.UUID
    expires_at: UtcDateTime
