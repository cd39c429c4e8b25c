"""Request and response bodies of the trust routes (other issuers)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.trust.errors import InvalidIssuer
from app.trust.issuers import IssuerRegistration
from app.trust.models import TrustedIssuerRecord

IssuerCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,12}$")]
Base64Url = Annotated[
    str,
    StringConstraints(
        pattern=r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3}={0,2})?$", max_length=1 << 20
    ),
]
"""base64url, padded or not (a length of 4k + 1 decodes to nothing)."""


def decode_base64url(text: str, what: str) -> bytes:
    """:raises InvalidIssuer: when `text` is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidIssuer(f"{what} is not base64url") from None


class IssuerCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "500000",
                    "name": "Chongqing Human Resources and Social Security Bureau",
                    "token_lifetime": 60,
                    "jwks": {
                        "keys": [
                            {
                                "kty": "EC",
                                "crv": "P-256",
                                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                                "kid": "3q2-7wAAAAA",
                                "alg": "ES256",
                                "use": "sig",
                            }
                        ]
                    },
                    "status_list_uri": "https://ecard.cq.example/v1/status-lists/500000",
                }
            ]
        },
    )

    code: IssuerCode = Field(description="The issuer's region code: the `iss` of its tokens")
    name: Annotated[str, text_limits(200), TRIM]
    token_lifetime: int = Field(ge=10, le=3600, description="Seconds its tokens are valid")
    jwks: dict[str, Any] | None = Field(
        default=None, description="Its published JWK set (contents of its jwks.json)"
    )
    cose_key_set: Base64Url | None = Field(
        default=None, description="Or its COSE key set (CBOR array of COSE_Key), base64url"
    )
    status_list_uri: (
        Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)] | None
    ) = Field(default=None, description="The stable URL of its signed status list")

    def registration(self) -> IssuerRegistration:
        """:raises InvalidIssuer: when both or neither key forms are given."""
        if (self.jwks is None) == (self.cose_key_set is None):
            raise InvalidIssuer("give the issuer's keys as exactly one of jwks and cose_key_set")
        cose = None
        if self.cose_key_set is not None:
            cose = decode_base64url(self.cose_key_set, "cose_key_set")
        return IssuerRegistration(
            code=self.code,
            name=self.name,
            token_lifetime=self.token_lifetime,
            jwks=self.jwks,
            cose_key_set=cose,
            status_list_uri=self.status_list_uri,
        )


class StatusListUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status_list": "0oRYJKMBJgRIx8Ad3kp5QnA"}]},
    )

    status_list: Base64Url = Field(
        min_length=1, description="The issuer's signed status list CWT, base64url"
    )


class IssuerOut(BaseModel):
    code: str
    name: str
    token_lifetime: int
    status_list_uri: str | None
    kids: list[str] = Field(description="The key ids (base64url) of its published keys")
    status_list_expires_at: UtcDateTime | None = Field(
        description="When the status list we hold for it expires; null if we hold none"
    )
    created_at: UtcDateTime

    @classmethod
    def of(cls, record: TrustedIssuerRecord) -> IssuerOut:
        keys = record.jwks.get("keys", [])
        return cls(
            code=record.code,
            name=record.name,
            token_lifetime=record.token_lifetime,
            status_list_uri=record.status_list_uri,
            kids=[str(key.get("kid")) for key in keys if isinstance(key, dict)],
            status_list_expires_at=record.status_list_expires_at,
            created_at=record.created_at,
        )
