"""Request and response bodies of `POST /v1/verify` (the scanner vendors' contract)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from api import json_bodies
from app.verification.service import Scan
from token_service import Verdict

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
BASE64URL_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3}={0,2})?$"
"""base64url, padded or not (a length of 4k + 1 decodes to nothing)."""
SCENE_PATTERN = r"^[a-z_]{1,32}$"


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "SSC1:6BFOXN*TS0BI$ZDFRH...", "scene": "metro"}]},
    )

    token: str = Field(description="The scanned string; anything unreadable is `malformed`")
    scene: Annotated[str, StringConstraints(pattern=SCENE_PATTERN)] | None = Field(
        default=None, description="Catalog scene code scanned for; decides the attributes"
    )


class GrantedEntitlement(BaseModel):
    kind: str = Field(examples=["elderly_preferential"])
    expires_at: str = Field(description="ISO 8601, UTC", examples=["2027-12-31T16:00:00Z"])


class PresentedLicence(BaseModel):
    """A holder's e-licence, from a licence presentation QR, for a scene that may read its
    type; its verification state is computed at the scan."""

    type: str = Field(examples=["driving_licence"])
    issuer: str = Field(description="The issuing department's code and name")
    number: str
    holder_name: str
    category: str | None = Field(examples=["C1"])
    valid_from: str
    valid_until: str | None
    status: str = Field(description="valid, suspended, revoked or expired")
    verified: bool = Field(description="Signature valid, key trusted, status valid, in validity")
    reason: str | None = Field(description="Why not verified")


class Holder(BaseModel):
    """Exactly the attributes the scene's catalog entry lists, and nothing else: a field the
    scene does not list is absent (not null). Without a scene: `masked_name` and `pseudonym`."""

    masked_name: str | None = Field(default=None, examples=["张*三"])
    pseudonym: str | None = Field(
        default=None,
        description="Pairwise: stable for one organisation, unlinkable across organisations",
        examples=["q0bW8m1t3rP6sC9yZ2xLkA"],
    )
    full_name: str | None = Field(default=None, examples=["张小三"])
    document_type: str | None = Field(default=None, examples=["resident_id"])
    document_number: str | None = Field(default=None, examples=["110101199003071234"])
    masked_document_number: str | None = Field(default=None, examples=["110***********1234"])
    age_band: str | None = Field(
        default=None,
        description="under_14, 14_17, 18_59, 60_64, 65_69 or 70_plus; null when the "
        "holder's document states no birth date",
        examples=["18_59"],
    )
    entitlements: list[GrantedEntitlement] | None = Field(
        default=None,
        description="Only for scenes that read entitlements, and only when the holder has "
        "one of the scene's kinds granted and unexpired (absent otherwise)",
    )
    licence: PresentedLicence | None = Field(
        default=None, description="Only for a licence presentation QR at a scene that reads it"
    )


class VerifyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "verdict": "valid",
                    "checked_at": "2026-11-26T08:30:00.123Z",
                    "kid": "q3Lk9xY0AbE",
                    "iss": "360000",
                    "scene": "metro",
                    "holder": {"masked_name": "张*三", "pseudonym": "q0bW8m1t3rP6sC9yZ2xLkA"},
                },
                {
                    "verdict": "replayed",
                    "checked_at": "2026-11-26T08:30:01.004Z",
                    "kid": "q3Lk9xY0AbE",
                    "iss": "360000",
                    "scene": "metro",
                },
            ]
        }
    )

    verdict: Verdict
    checked_at: str = Field(description="ISO 8601, UTC")
    kid: str | None = Field(description="Signing key id, base64url; null when unreadable")
    iss: str | None
    scene: str | None
    holder: Holder | None = Field(default=None, description="Only with verdict `valid`")


MAX_BATCH_SCANS = 100
MAX_COSE_CHARS = 440  # base64url of the longest COSE_Sign1 the codec reads (320 bytes)


class BatchScan(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # what `_token_or_cose` enforces: one of the two, null is absent
            "oneOf": [
                {
                    "required": ["token"],
                    "properties": {"token": {"type": "string"}, "cose": {"type": "null"}},
                },
                {
                    "required": ["cose"],
                    "properties": {"cose": {"type": "string"}, "token": {"type": "null"}},
                },
            ]
        },
    )

    token: str | None = Field(default=None, description="The scanned string (or give `cose`)")
    cose: str | None = Field(
        default=None,
        description="base64url of the binary COSE_Sign1 inside the token, for gateways",
        max_length=MAX_COSE_CHARS,
        pattern=BASE64URL_PATTERN,
    )
    scene: Annotated[str, StringConstraints(pattern=SCENE_PATTERN)] | None = None
    scan_id: Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)] | None = Field(
        default=None,
        description="Scanner-chosen id: a retry with the same id gets the first verdict",
    )

    @model_validator(mode="after")
    def _token_or_cose(self) -> BatchScan:
        if (self.token is None) == (self.cose is None):
            raise ValueError("exactly one of token and cose is required")
        return self


class BatchVerifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "scans": [
                        {
                            "token": "SSC1:6BFOXN*TS0BI$ZDFRH...",
                            "scene": "metro",
                            "scan_id": "g1-1",
                        },
                        {"cose": "0oRNogEmBEjx8Ad3kp5QnA", "scene": "metro", "scan_id": "g1-2"},
                    ]
                }
            ]
        },
    )

    scans: list[BatchScan] = Field(min_length=1, max_length=MAX_BATCH_SCANS)


class BatchVerdict(VerifyResponse):
    scan_id: str | None = Field(default=None, description="The scan's `scan_id`, if it had one")


class BatchVerifyResponse(BaseModel):
    results: list[BatchVerdict] = Field(description="One verdict per scan, in request order")


def invalid(location: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 problem+json, in the shape pydantic's own errors take."""
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])


_SCAN_ID = re.compile(IDEMPOTENCY_KEY_PATTERN)
_SCENE = re.compile(SCENE_PATTERN)
_VERIFY_FIELDS = frozenset(VerifyRequest.model_fields)


def parse_verify(raw: bytes) -> tuple[str, str | None]:
    """The token and scene of a `POST /v1/verify` body, read by the strict JSON reader every
    route uses and validated by the model the OpenAPI document shows.

    A body of the one shape scanners send (a `token` string, a `scene` matching the pattern
    or null or absent, nothing else) is taken without building the model: the model's
    validation was half of the body's cost per scan (load/PROFILE.md). Every other body is
    validated by the model itself, which accepts or refuses it and says why; the fast path
    accepts nothing the model refuses (tests/api/test_verify_body.py).

    :raises RequestValidationError: on anything `VerifyRequest` refuses.
    """
    value = _json(raw)
    if type(value) is dict and value.keys() <= _VERIFY_FIELDS:
        token, scene = value.get("token"), value.get("scene")
        if type(token) is str and (
            scene is None or (type(scene) is str and _SCENE.fullmatch(scene) is not None)
        ):
            return token, scene
    body = _model(VerifyRequest, value)
    return body.token, body.scene


def parse_idempotency_key(value: str | None) -> str | None:
    """:raises RequestValidationError: unless absent or matching `IDEMPOTENCY_KEY_PATTERN`."""
    if value is not None and not _SCAN_ID.fullmatch(value):
        raise invalid(("header", "idempotency-key"), f"must match {IDEMPOTENCY_KEY_PATTERN}")
    return value


def parse_batch(raw: bytes) -> list[Scan]:
    """The scans of a `POST /v1/verify/batch` body, binary COSE already decoded.

    :raises RequestValidationError: on anything `BatchVerifyRequest` refuses.
    """
    body = _validated(BatchVerifyRequest, raw)
    return [
        Scan(
            scan.token if scan.token is not None else _cose_bytes(scan.cose, index),
            scan.scene,
            scan.scan_id,
        )
        for index, scan in enumerate(body.scans)
    ]


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], raw: bytes) -> M:
    return _model(model, _json(raw))


def _json(raw: bytes) -> object:
    """:raises RequestValidationError: when `raw` is not one JSON value without repeated
    member names (`api.json_bodies.loads`)."""
    try:
        return json_bodies.loads(raw)
    except json_bodies.InvalidJson as error:
        raise invalid(("body",), f"the body is not valid JSON: {error.msg}") from None


def _model(model: type[M], value: object) -> M:
    """:raises RequestValidationError: with pydantic's errors, located in the body."""
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {"loc": ("body", *item["loc"]), "msg": item["msg"], "type": item["type"]}
                for item in error.errors(include_url=False, include_context=False)
            ]
        ) from None


def _cose_bytes(value: str | None, index: int) -> bytes:
    """`cose` (already matched against `BASE64URL_PATTERN` by the model) as bytes."""
    assert value is not None  # the model holds exactly one of token and cose
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise invalid(("body", "scans", index, "cose"), "not valid base64url") from None
