"""Signed documents (status lists, trust lists, verifier bundles) as COSE_Sign1 and JWS.

Unlike the QR token, these documents are not size-critical, so they use a general but
strict CBOR subset: integers, byte and text strings, arrays, maps with integer or text keys,
booleans and null; definite lengths and preferred serialization only, no duplicate keys, no
tags inside, bounded nesting. Every decoding failure surfaces as one `DocumentError`
subclass with a machine-readable `reason`, never as a stray exception.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from token_service import _cbor
from token_service.codec import der_signature, is_low_s, low_s, low_s_signature
from token_service.errors import TokenServiceError
from token_service.keys import SigningKey, b64url

Cbor: TypeAlias = "int | bytes | str | bool | list[Cbor] | dict[int | str, Cbor] | None"
Json: TypeAlias = dict[str, Any]

COSE_SIGN1_TAG = 18
HEADER_ALG, HEADER_KID, HEADER_TYP = 1, 4, 16
ALG_ES256 = -7
SIGNATURE_LENGTH = 64
MAX_DEPTH = 16

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SIMPLE = {0xF4: False, 0xF5: True, 0xF6: None}
_TAG_18 = bytes((0xC0 | COSE_SIGN1_TAG,))


class DocumentError(TokenServiceError, ValueError):
    """A signed document is malformed, of another type, wrongly signed or out of date.

    `reason` is one of: malformed, wrong_type, unknown_key, bad_signature, expired,
    not_yet_valid, rollback, inconsistent.
    """

    code = "document_invalid"

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


def encode(item: Cbor) -> bytes:
    """Deterministic CBOR (RFC 8949 section 4.2.1: preferred heads, keys sorted bytewise).

    :raises TypeError: on a type outside `Cbor`.
    :raises ValueError: on an integer outside the 64-bit CBOR range.
    """
    if item is None or isinstance(item, bool):
        return bytes((0xF6 if item is None else 0xF5 if item else 0xF4,))
    if isinstance(item, int):
        return _cbor.head(_cbor.UINT, item) if item >= 0 else _cbor.head(_cbor.NINT, -1 - item)
    if isinstance(item, bytes):
        return _cbor.head(_cbor.BYTES, len(item)) + item
    if isinstance(item, str):
        text = item.encode("utf-8")
        return _cbor.head(_cbor.TEXT, len(text)) + text
    if isinstance(item, list):
        return _cbor.head(_cbor.ARRAY, len(item)) + b"".join(encode(element) for element in item)
    if isinstance(item, dict):
        entries = sorted((encode(key), encode(value)) for key, value in item.items())
        return _cbor.head(_cbor.MAP, len(entries)) + b"".join(k + v for k, v in entries)
    raise TypeError(f"cannot encode {type(item).__name__} as CBOR")


def decode(data: bytes) -> Cbor:
    """Decodes one item of the strict subset that fills `data` exactly.

    :raises _cbor.CborError: on anything else.
    """
    item, end = _item(data, 0, MAX_DEPTH)
    if end != len(data):
        raise _cbor.CborError("trailing bytes")
    return item


def _item(data: bytes, position: int, depth: int) -> tuple[Cbor, int]:
    if depth < 0:
        raise _cbor.CborError("nested too deeply")
    if position >= len(data):
        raise _cbor.CborError("truncated")
    initial = data[position]
    if initial >> 5 == 7:
        if initial in _SIMPLE:
            return _SIMPLE[initial], position + 1
        raise _cbor.CborError("floats and other simple values are not used")
    major, argument, position = _cbor.read_head(data, position)
    remaining = len(data) - position
    if major == _cbor.UINT:
        return argument, position
    if major == _cbor.NINT:
        return -1 - argument, position
    if major in (_cbor.BYTES, _cbor.TEXT):
        if argument > remaining:
            raise _cbor.CborError("truncated")
        chunk = data[position : position + argument]
        if major == _cbor.BYTES:
            return chunk, position + argument
        try:
            return chunk.decode("utf-8"), position + argument
        except UnicodeDecodeError:
            raise _cbor.CborError("text is not UTF-8") from None
    if major == _cbor.ARRAY:
        if argument > remaining:
            raise _cbor.CborError("truncated")
        items: list[Cbor] = []
        for _ in range(argument):
            element, position = _item(data, position, depth - 1)
            items.append(element)
        return items, position
    if major == _cbor.MAP:
        if 2 * argument > remaining:
            raise _cbor.CborError("truncated")
        entries: dict[int | str, Cbor] = {}
        for _ in range(argument):
            key, position = _item(data, position, depth - 1)
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise _cbor.CborError("map keys are integers or text")
            if key in entries:
                raise _cbor.CborError("duplicate map key")
            entries[key], position = _item(data, position, depth - 1)
        return entries, position
    raise _cbor.CborError("tags are only used around the COSE message")


def sign1(payload: bytes, *, content_type: str, signing: SigningKey) -> bytes:
    """A tagged COSE_Sign1 with protected header {alg: ES256, kid, typ} (RFC 9052, RFC 9596)."""
    protected = encode({HEADER_ALG: ALG_ES256, HEADER_KID: signing.kid, HEADER_TYP: content_type})
    to_be_signed = encode(["Signature1", protected, b"", payload])
    signature = low_s_signature(signing.private_key.sign(to_be_signed, _ECDSA_SHA256))
    return _TAG_18 + encode([protected, {}, payload, signature])


def open_sign1(
    data: bytes,
    keys: KeyLookup,
    *,
    content_type: str,
    max_size: int,
    error: type[DocumentError],
) -> tuple[bytes, dict[int | str, Cbor]]:
    """Checks a COSE_Sign1 document and returns (kid, its decoded claims map).

    The kid must be in the protected header; the unprotected header is ignored.

    :raises error: with reason malformed, wrong_type, unknown_key or bad_signature.
    """
    if not isinstance(data, bytes) or len(data) > max_size:
        raise error(f"not bytes of at most {max_size}")
    if not data.startswith(_TAG_18):
        raise error("not a tagged COSE_Sign1")
    try:
        message = decode(data[1:])
        if not isinstance(message, list) or len(message) != 4:
            raise _cbor.CborError("a COSE_Sign1 is an array of four")
        protected, unprotected, payload, signature = message
        if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
            raise _cbor.CborError("headers of the wrong type")
        if not isinstance(payload, bytes) or not isinstance(signature, bytes):
            raise _cbor.CborError("payload and signature are byte strings")
        header = decode(protected)
        claims = decode(payload)
    except _cbor.CborError as failure:
        raise error(f"malformed COSE_Sign1: {failure}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise error("protected header and claims must be maps")
    if header.get(HEADER_TYP) != content_type:
        raise error(f"not of type {content_type}", reason="wrong_type")
    kid = header.get(HEADER_KID)
    if header.get(HEADER_ALG) != ALG_ES256 or not isinstance(kid, bytes):
        raise error("protected header must name ES256 and a kid")
    public_key = keys.find(kid)
    if public_key is None:
        raise error(f"signed by unknown key {b64url(kid)}", reason="unknown_key")
    if len(signature) != SIGNATURE_LENGTH or not is_low_s(signature):
        raise error("bad signature", reason="bad_signature")
    try:
        public_key.verify(
            der_signature(signature), encode(["Signature1", protected, b"", payload]), _ECDSA_SHA256
        )
    except InvalidSignature:
        raise error("bad signature", reason="bad_signature") from None
    return kid, claims


class KeyLookup(Protocol):
    """What `open_sign1` and `open_jws` need of a key set (`PublicKeySet`, `KeyRing`)."""

    def find(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The public key with this kid, or None."""
        ...


def sign_jws(claims: Json, *, typ: str, signing: SigningKey) -> str:
    """A compact JWS (ES256) with header {alg, typ, kid: base64url(kid)}, its signature low-S
    (pyjwt signs as `cryptography` does, either way)."""
    text = jwt.encode(
        claims,
        signing.private_key,
        algorithm="ES256",
        headers={"typ": typ, "kid": b64url(signing.kid)},
    )
    signed, _, signature = text.rpartition(".")
    return f"{signed}.{b64url(low_s(b64url_decode(signature, DocumentError)))}"


def open_jws(
    text: str,
    keys: KeyLookup,
    *,
    typ: str,
    max_size: int,
    error: type[DocumentError],
) -> tuple[bytes, Json]:
    """Checks a compact JWS signed with ES256 and returns (kid, its claims).

    Times are not checked here (pyjwt reads the wall clock); callers check them.

    :raises error: with reason malformed, wrong_type, unknown_key or bad_signature.
    """
    if not isinstance(text, str) or len(text) > max_size:
        raise error(f"not a string of at most {max_size} characters")
    try:
        header = jwt.get_unverified_header(text)
    except jwt.PyJWTError as failure:
        raise error(f"malformed JWS: {failure}") from None
    if header.get("typ") != typ:
        raise error(f"not of type {typ}", reason="wrong_type")
    kid_text = header.get("kid")
    if header.get("alg") != "ES256" or not isinstance(kid_text, str):
        raise error("header must name ES256 and a kid")
    kid = b64url_decode(kid_text, error)
    public_key = keys.find(kid)
    if public_key is None:
        raise error(f"signed by unknown key {kid_text}", reason="unknown_key")
    signature = b64url_decode(text.rpartition(".")[2], error)
    if len(signature) != SIGNATURE_LENGTH or not is_low_s(signature):
        raise error("bad signature", reason="bad_signature")
    try:
        claims = jwt.decode(
            text,
            public_key,
            algorithms=["ES256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise error("bad signature", reason="bad_signature") from None
    except jwt.PyJWTError as failure:
        raise error(f"malformed JWS: {failure}") from None
    if not isinstance(claims, dict):
        raise error("claims must be an object")
    return kid, claims


def b64url_decode(text: str, error: type[DocumentError]) -> bytes:
    """Strict unpadded base64url.

    :raises error: on any other text.
    """
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise error("bad base64url") from None
    if b64url(data) != text:
        raise error("base64url is not canonical")
    return data


def claim(claims: Mapping[Any, Any], key: int | str, kind: type, error: type[DocumentError]) -> Any:
    """A required claim of one type (bool never counts as int).

    :raises error: if missing or of another type.
    """
    value = claims.get(key)
    if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise error(f"claim {key!r} missing or not {kind.__name__}")
    return value


def check_times(
    issued_at: int,
    expires_at: int | None,
    *,
    now: float,
    skew: float,
    allow_expired: bool,
    error: type[DocumentError],
) -> None:
    """Refuses a document issued in the future or, unless allowed, expired.

    :raises error: with reason not_yet_valid or expired.
    """
    if issued_at - skew > now:
        raise error("issued in the future", reason="not_yet_valid")
    if expires_at is not None and not allow_expired and expires_at + skew < now:
        raise error("expired", reason="expired")
