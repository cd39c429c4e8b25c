"""Request and response bodies of organisations, scanners and the OAuth2 token endpoint."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Literal, Self
from urllib.parse import parse_qsl, unquote_plus

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.catalog.scenes import SCENES
from app.clients.errors import InvalidClient, OAuthInvalidRequest
from app.clients.service import ClientCredentialsRequest

SceneCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_]{1,32}$"),
    WithJsonSchema({"type": "string", "enum": sorted(SCENES)}),  # else unknown-scene (422)
]
Name = Annotated[str, text_limits(200), TRIM]


_BOTH_COORDINATES_OR_NEITHER: list[JsonValue] = [
    # What `_both_coordinates` enforces (an absent and a null member are the same):
    {
        "required": ["latitude", "longitude"],
        "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}},
    },
    {"properties": {"latitude": {"type": "null"}, "longitude": {"type": "null"}}},
]


class Located(BaseModel):
    """A place given by both coordinates or neither (organisations and their venues)."""

    latitude: float | None = Field(
        default=None, ge=-90, le=90, strict=True, description="Venue location (WGS 84 degrees)"
    )
    longitude: float | None = Field(
        default=None, ge=-180, le=180, strict=True, description="Venue location (WGS 84 degrees)"
    )

    @model_validator(mode="after")
    def _both_coordinates(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class OrganisationCreate(Located):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Nanchang No. 1 Hospital",
                    "venue_type": "hospital",
                    "region_code": "360100",
                    "scenes": ["hospital"],
                    "latitude": 28.6829,
                    "longitude": 115.8579,
                }
            ],
            "oneOf": _BOTH_COORDINATES_OR_NEITHER,
        },
    )

    name: Name
    venue_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    region_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,12}$")]
    scenes: list[SceneCode] = Field(min_length=1, max_length=32, description="Catalog scene codes")


class OrganisationOut(BaseModel):
    id: uuid.UUID
    name: str
    venue_type: str
    region_code: str
    scenes: list[str]
    latitude: float | None = None
    longitude: float | None = None
    created_at: UtcDateTime
    withdrawn_at: UtcDateTime | None = Field(
        default=None, description="Set while the approval is withdrawn: its scanners refused"
    )


class VenueCreate(Located):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Honggutan campus",
                    "region_code": "360100",
                    "latitude": 28.6889,
                    "longitude": 115.8206,
                }
            ],
            "oneOf": _BOTH_COORDINATES_OR_NEITHER,
        },
    )

    name: Name
    region_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,12}$")]


class VenueOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    region_code: str
    latitude: float | None = None
    longitude: float | None = None
    is_default: bool = Field(description="Created with the organisation, at its location")
    created_at: UtcDateTime


class ScannerCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Gate 3 scanner", "scenes": ["hospital"]}]},
    )

    name: Name
    scenes: list[SceneCode] = Field(
        min_length=1, max_length=32, description="A subset of the organisation's scenes"
    )
    venue_id: uuid.UUID | None = Field(
        default=None, description="One of the organisation's venues; default: its default venue"
    )


class ScannerOut(BaseModel):
    client_id: str
    name: str
    organisation_id: uuid.UUID
    venue_id: uuid.UUID | None
    scenes: list[str]
    status: str
    created_at: UtcDateTime
    disabled_at: UtcDateTime | None


class ScannerCreated(ScannerOut):
    client_secret: str = Field(description="Shown once; only an HMAC of it is kept")


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9...",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "verify",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the RFC 6750 scheme name
    expires_in: int
    scope: str


_MAX_FIELDS = 8
TOKEN_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_id": {"type": "string", "maxLength": 64},
                    "client_secret": {"type": "string", "maxLength": 256},
                    "scope": {"type": "string", "maxLength": 200},
                },
                # Other parameters are ignored (RFC 6749 section 3.2), named and at most
                # 8 in all; none may be repeated.
                "additionalProperties": {"type": "string"},
                "propertyNames": {"minLength": 1},
                "maxProperties": _MAX_FIELDS,
            },
            "example": {
                "grant_type": "client_credentials",
                "client_id": "scn_0123456789abcdef0123",
                "client_secret": "cs_...",
            },
        }
    },
}
"""Documented by hand: the form is parsed here (`token_request`), not by FastAPI."""

_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def token_request(
    body: bytes, content_type: str | None, authorization: str | None
) -> ClientCredentialsRequest:
    """Reads an RFC 6749 token request: the form, and client credentials from HTTP Basic
    (section 2.3.1, each part form-urlencoded) or from the form, never from both.

    :raises OAuthInvalidRequest: for a body that is not a well-formed form.
    :raises InvalidClient: for a malformed Basic header.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        raise OAuthInvalidRequest(f"the body must be {_FORM_MEDIA_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthInvalidRequest("the body is not a well-formed form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthInvalidRequest(f"parameter {name!r} is repeated")
        form[name] = value
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    basic = _basic_credentials(authorization)
    if basic is not None:
        if client_secret is not None:
            raise OAuthInvalidRequest("use one client authentication method, not two")
        if client_id is not None and client_id != basic[0]:
            raise OAuthInvalidRequest("client_id differs from the authenticated client")
        client_id, client_secret = basic
    return ClientCredentialsRequest(
        grant_type=form.get("grant_type"),
        client_id=client_id,
        client_secret=client_secret,
        scope=form.get("scope"),
    )


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if authorization is None:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed Basic credentials") from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(client_secret)
