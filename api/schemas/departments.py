"""Request and response bodies of the issuer registry (departments and their keys)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, WithJsonSchema

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.departments.models import IssuerKind
from app.departments.types import DOCUMENT_TYPES

FreeText = Annotated[str, text_limits(500), TRIM]

DocumentTypeCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_]{1,40}$"),
    WithJsonSchema({"type": "string", "enum": sorted(DOCUMENT_TYPES)}),
]
IssuerCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")]
Name = Annotated[str, text_limits(200), TRIM]
Kid = Annotated[str, StringConstraints(min_length=1, max_length=128)]

_EC_EXAMPLE: JsonValue = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "kid": "traffic-2026-1",
}


class IssuerCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "360000-traffic",
                    "name": "Jiangxi Traffic Police",
                    "kind": "department",
                    "region_code": "360000",
                    "issued_types": ["driving_licence", "vehicle_registration"],
                }
            ]
        },
    )

    code: IssuerCode
    name: Name
    kind: IssuerKind = IssuerKind.department
    region_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] | None = None
    issued_types: list[DocumentTypeCode] = Field(min_length=1, max_length=50)


class IssuerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issued_types: list[DocumentTypeCode] | None = Field(default=None, min_length=1, max_length=50)
    enabled: bool | None = Field(default=None, strict=True)


class IssuerOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    region_code: str | None
    issued_types: list[str]
    created_at: UtcDateTime
    disabled_at: UtcDateTime | None
    client_ids: list[str] = Field(description="The issuer's API clients (client credentials)")


class IssuerCreated(IssuerOut):
    client_secret: str = Field(description="The secret of the first client: shown only here")


class KeyRegister(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"jwk": _EC_EXAMPLE}]}
    )

    jwk: dict[str, Any] = Field(
        description="A public JWK: EC P-256 (ES256) or OKP Ed25519 (EdDSA); `kid` optional "
        "(default: the RFC 7638 thumbprint); a private member is refused",
        max_length=16,
    )


class KeyRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: FreeText


class IssuerKeyOut(BaseModel):
    kid: str
    alg: str
    status: str
    jwk: dict[str, Any]
    created_at: UtcDateTime
    retired_at: UtcDateTime | None
    revoked_at: UtcDateTime | None
    revocation_reason: str | None


class IssuerSelf(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    issued_types: list[str]
    scopes: list[str] = Field(description="The scopes of the calling token")
    keys: list[IssuerKeyOut]
