"""Request and response bodies of e-card activation, holder sessions, the own card and QR."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import PIN_PATTERN, UtcDateTime
from app.cards.documents import DocumentType
from app.cards.models import CardStatus

_PIN = Field(pattern=PIN_PATTERN, description="The card's 6-digit PIN")
_DEVICE_ID = Field(
    min_length=1, max_length=128, description="The phone's stable installation identifier"
)


class ActivationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "card_number": "364829130754",
                    "document_number": "11010519491231002X",
                    "device_id": "iphone-4f9d2c",
                    "device_public_key": None,
                    "pin": "284617",
                }
            ]
        },
    )

    card_number: str = Field(min_length=1, max_length=32)
    document_number: str = Field(min_length=1, max_length=64)
    device_id: str = _DEVICE_ID
    device_public_key: str | None = Field(
        default=None,
        max_length=512,
        description="Base64 DER SubjectPublicKeyInfo of the phone's P-256 key (offline use)",
    )
    pin: str = Field(
        pattern=PIN_PATTERN,
        description="First activation: the new 6-digit PIN; later activations: the current PIN",
    )


class LoginRequest(BaseModel):
    """Either `card_number`, or `document_type` with `document_number`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"card_number": "364829130754", "pin": "284617", "device_id": "iphone-4f9d2c"},
                {
                    "document_type": "resident_id",
                    "document_number": "11010519491231002X",
                    "pin": "284617",
                    "device_id": "iphone-4f9d2c",
                },
            ],
            # What `_one_identifier` enforces (an absent and a null member are the same):
            "oneOf": [
                {
                    "required": ["card_number"],
                    "properties": {
                        "card_number": {"type": "string"},
                        "document_type": {"type": "null"},
                        "document_number": {"type": "null"},
                    },
                },
                {
                    "required": ["document_type", "document_number"],
                    "properties": {
                        "card_number": {"type": "null"},
                        "document_type": {"type": "string"},
                        "document_number": {"type": "string"},
                    },
                },
            ],
        },
    )

    card_number: str | None = Field(default=None, min_length=1, max_length=32)
    document_type: DocumentType | None = None
    document_number: str | None = Field(default=None, min_length=1, max_length=64)
    pin: str = _PIN
    device_id: str = _DEVICE_ID

    @model_validator(mode="after")
    def _one_identifier(self) -> Self:
        by_document = self.document_type is not None or self.document_number is not None
        if self.card_number is not None and by_document:
            raise ValueError("give card_number or document_type + document_number, not both")
        if self.card_number is None and (
            self.document_type is None or self.document_number is None
        ):
            raise ValueError("give card_number, or both document_type and document_number")
        return self


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"refresh_token": "rt_Q2hhbmdlIG1lIHBsZWFzZQ"}]},
    )

    refresh_token: str = Field(min_length=1, max_length=256)


class SessionResponse(BaseModel):
    """The refresh token is shown once; only its HMAC is kept."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9...",
                    "token_type": "Bearer",
                    "expires_in": 600,
                    "expires_at": "2026-11-25T08:10:00Z",
                    "refresh_token": "rt_Q2hhbmdlIG1lIHBsZWFzZQ",
                    "refresh_expires_at": "2026-12-25T08:00:00Z",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    expires_at: UtcDateTime
    refresh_token: str
    refresh_expires_at: UtcDateTime


class PinChangeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"old_pin": "284617", "new_pin": "730415"}]},
    )

    old_pin: str = _PIN
    new_pin: str = _PIN


class PinResetRequest(BaseModel):
    """A PIN reset on one of the holder's own phones (the e-card is activated on it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "card_number": "364829130754",
                    "document_number": "11010519491231002X",
                    "device_id": "iphone-4f9d2c",
                    "new_pin": "730415",
                }
            ]
        },
    )

    card_number: str = Field(min_length=1, max_length=32)
    document_number: str = Field(
        min_length=1, max_length=64, description="The holder's identity document number"
    )
    device_id: str = _DEVICE_ID
    new_pin: str = Field(pattern=PIN_PATTERN, description="The new 6-digit PIN")


class HolderCardResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "card_number": "36******0754",
                    "status": "active",
                    "region_code": "360000",
                    "bank_code": "ICBC",
                    "bank_name": "Industrial and Commercial Bank of China",
                    "name": "张*三",
                }
            ]
        }
    )

    card_number: str = Field(description="Masked: first 2 and last 4 characters")
    status: CardStatus
    region_code: str
    bank_code: str
    bank_name: str
    name: str = Field(description="Masked as shown to others, e.g. 张*三")


class HolderNoticeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "application.duplicate_for_holder",
                    "message": "Someone applied for a social security card with your identity "
                    "document. The application is refused in review; if it was not you, "
                    "contact the service.",
                    "at": "2026-11-25T08:01:00Z",
                }
            ]
        }
    )

    kind: str = Field(description="What happened, e.g. application.duplicate_for_holder")
    message: str
    at: UtcDateTime


class UpcomingQr(BaseModel):
    token: str
    not_before: UtcDateTime
    expires_at: UtcDateTime


class QrResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "SSC1:6BFOXN*TS0BI$ZD...",
                    "expires_at": "2026-11-25T08:01:00Z",
                    "refresh_after": 30,
                    "kid": "q3Lk9xY0AbE",
                    "png_url": "/v1/me/qr.png",
                    "svg_url": "/v1/me/qr.svg",
                    "upcoming": [],
                }
            ]
        }
    )

    token: str
    expires_at: UtcDateTime
    refresh_after: int = Field(description="Seconds after which the phone fetches a new code")
    kid: str = Field(description="Key id of the signing key, base64url (as in the JWKS)")
    png_url: str
    svg_url: str
    upcoming: list[UpcomingQr] = Field(
        default_factory=list,
        description="With ?prefetch=N: later tokens, each valid from when the previous one "
        "is due to be replaced",
    )
