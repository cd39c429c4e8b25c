"""Request and response bodies of `POST /v1/verify` (the scanner vendors' contract)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api import json_bodies
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
        json_schema_extra={  # what `_scan` enforces: exactly one of the two, null is absent
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


@dataclass(frozen=True, slots=True)
class ParsedScan:
    token: str | bytes
    scene: str | None
    scan_id: str | None


# The hot path parses its small bodies by hand (`json_bodies.loads`, orjson): pydantic costs
# more per request than the rest of the route outside the signature check. The models above
# document the same rules (and the OpenAPI schema); tests hold the two to the same verdicts.
_SCENE = re.compile(SCENE_PATTERN)
_SCAN_ID = re.compile(IDEMPOTENCY_KEY_PATTERN)
_VERIFY_FIELDS = frozenset({"token", "scene"})
_SCAN_FIELDS = frozenset({"token", "cose", "scene", "scan_id"})


def invalid(location: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 problem+json, in the shape pydantic's own errors take."""
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])


def parse_verify(raw: bytes) -> tuple[str, str | None]:
    """(token, scene) of a `POST /v1/verify` body.

    :raises RequestValidationError: on anything `VerifyRequest` would refuse.
    """
    body = _json_object(raw)
    _only(body, _VERIFY_FIELDS, ("body",))
    token = body.get("token")
    if not isinstance(token, str):
        raise invalid(("body", "token"), "a string is required")
    return token, _scene(body, ("body",))


def parse_idempotency_key(value: str | None) -> str | None:
    """:raises RequestValidationError: unless absent or matching `IDEMPOTENCY_KEY_PATTERN`."""
    if value is not None and not _SCAN_ID.fullmatch(value):
        raise invalid(("header", "idempotency-key"), f"must match {IDEMPOTENCY_KEY_PATTERN}")
    return value


def parse_batch(raw: bytes) -> list[ParsedScan]:
    """The scans of a `POST /v1/verify/batch` body, binary COSE already decoded.

    :raises RequestValidationError: on anything `BatchVerifyRequest` would refuse.
    """
    body = _json_object(raw)
    _only(body, frozenset({"scans"}), ("body",))
    scans = body.get("scans")
    if not isinstance(scans, list) or not 1 <= len(scans) <= MAX_BATCH_SCANS:
        raise invalid(("body", "scans"), f"a list of 1 to {MAX_BATCH_SCANS} scans is required")
    return [_scan(item, ("body", "scans", index)) for index, item in enumerate(scans)]


def _scan(item: object, location: tuple[str | int, ...]) -> ParsedScan:
    if not isinstance(item, dict):
        raise invalid(location, "an object is required")
    _only(item, _SCAN_FIELDS, location)
    token = item.get("token")
    cose = item.get("cose")
    if (token is None) == (cose is None):
        raise invalid(location, "exactly one of token and cose is required")
    scanned: str | bytes
    if token is not None:
        if not isinstance(token, str):
            raise invalid((*location, "token"), "a string is required")
        scanned = token
    else:
        scanned = _base64url(cose, (*location, "cose"))
    scan_id = item.get("scan_id")
    if scan_id is not None and not (isinstance(scan_id, str) and _SCAN_ID.fullmatch(scan_id)):
        raise invalid((*location, "scan_id"), f"must match {IDEMPOTENCY_KEY_PATTERN}")
    return ParsedScan(scanned, _scene(item, location), scan_id)


def _json_object(raw: bytes) -> dict[str, object]:
    try:
        body = json_bodies.loads(raw)
    except json_bodies.InvalidJson as error:
        raise invalid(("body",), f"the body is not valid JSON: {error.msg}") from None
    if not isinstance(body, dict):
        raise invalid(("body",), "a JSON object is required")
    return body


def _only(
    body: dict[str, object], allowed: frozenset[str], location: tuple[str | int, ...]
) -> None:
    for name in body:
        if name not in allowed:
            raise invalid((*location, name), "unknown field")


def _scene(body: dict[str, object], location: tuple[str | int, ...]) -> str | None:
    scene = body.get("scene")
    if scene is None:
        return None
    if not isinstance(scene, str) or not _SCENE.fullmatch(scene):
        raise invalid((*location, "scene"), f"must match {SCENE_PATTERN}")
    return scene


def _base64url(value: object, location: tuple[str | int, ...]) -> bytes:
    if not isinstance(value, str) or len(value) > MAX_COSE_CHARS or not _BASE64URL.fullmatch(value):
        raise invalid(location, f"base64url of at most {MAX_COSE_CHARS} characters is required")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise invalid(location, "not valid base64url") from None


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
