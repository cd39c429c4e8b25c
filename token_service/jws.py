"""Signed documents of issuers (departments, training institutions, employers): JWS compact
serialisation (RFC 7515) over RFC 8785 canonical JSON.

An issuer signs the canonical form of a document's JSON object, so the signed bytes are
defined by the object alone: whoever re-serialises the object the RFC 8785 way gets the same
bytes. We insist that the payload *is* canonical (a payload that is valid JSON but not in
canonical form is refused), so two pushes of one document never differ only in white space
or key order, and the stored original is the exact string the issuer signed.

Header: `alg` (`ES256`: P-256 with SHA-256, the signature as the 64-byte `r || s`, RFC 7518
section 3.4; or `EdDSA`: Ed25519, RFC 8037, also under RFC 9864's name `Ed25519`), `kid`
(the key's id as registered with us), optionally `typ` (if present: `ssc-document+jws`).
`crit` is refused: we understand no extension. Nothing in the header is fetched (`jku`,
`x5u` are ignored).

Keys are public JWKs (RFC 7517): `{"kty": "EC", "crv": "P-256", "x", "y"}` or
`{"kty": "OKP", "crv": "Ed25519", "x"}`; a JWK with private members (`d`) is refused. A key's
id is its `kid` if it has one, else its RFC 7638 thumbprint.

Any standard JOSE library verifies these signatures (the tests check them with joserfc).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from token_service.errors import TokenServiceError

__all__ = [
    "ALGORITHMS",
    "DOCUMENT_TYP",
    "MAX_JWS_CHARS",
    "JwsError",
    "PublicJwk",
    "VerifiedDocument",
    "canonicalize",
    "jwk_thumbprint",
    "parse_jwk",
    "public_jwk",
    "read_kid",
    "sign_document",
    "verify_document",
]

ES256 = "ES256"
EDDSA = "EdDSA"
ED25519 = "Ed25519"
"""RFC 9864's fully specified name for EdDSA with Ed25519; accepted like `EdDSA`."""
ALGORITHMS = (ES256, EDDSA, ED25519)
DOCUMENT_TYP = "ssc-document+jws"
MAX_JWS_CHARS = 32768
"""Larger signed documents are refused before anything is decoded."""
_MAX_HEADER_CHARS = 1024
_MAX_KID_CHARS = 128
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_P256_COORDINATE = 32

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class JwsError(TokenServiceError, ValueError):
    """A signed document or key that is refused; `code` says why."""

    code = "jws_error"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# The codes of JwsError (stable: they reach API clients).
MALFORMED = "malformed"
NOT_CANONICAL = "not_canonical"
ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
INVALID_JWK = "invalid_jwk"


@dataclass(frozen=True, slots=True)
class PublicJwk:
    """A verified public key: its id, its algorithm, the key and its public JWK members."""

    kid: str
    alg: str
    key: PublicKey
    jwk: Mapping[str, str]
    thumbprint: str


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    kid: str
    alg: str
    payload: dict[str, Any]
    """The signed JSON object."""
    payload_bytes: bytes
    """Its canonical form, exactly as signed."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise JwsError(MALFORMED, f"the {what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwsError(MALFORMED, f"the {what} is not base64url") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JwsError(MALFORMED, f"the {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise JwsError(MALFORMED, f"the {what} is not a JSON object")
    return value


def canonicalize(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical form of a JSON value.

    :raises JwsError: (`malformed`) for values JSON cannot carry exactly (integers beyond
        2**53, NaN, non-string keys).
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as error:
        raise JwsError(MALFORMED, f"the document cannot be canonicalised: {error}") from None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public EC or OKP JWK."""
    if jwk.get("kty") == "EC":
        members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    else:
        members = {name: jwk[name] for name in ("crv", "kty", "x")}
    encoded = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64encode(hashlib.sha256(encoded).digest())


def parse_jwk(jwk: Mapping[str, Any]) -> PublicJwk:
    """Validates a public JWK (P-256 for ES256, Ed25519 for EdDSA).

    :raises JwsError: (`invalid_jwk`) for anything else, or a JWK with a private member.
    """
    if not isinstance(jwk, Mapping):
        raise JwsError(INVALID_JWK, "a JWK is a JSON object")
    if "d" in jwk or "p" in jwk or "k" in jwk:
        raise JwsError(INVALID_JWK, "send the public key only: the JWK has private members")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv == "P-256":
            x = _b64decode(str(jwk["x"]), "JWK member x")
            y = _b64decode(str(jwk["y"]), "JWK member y")
            if len(x) != _P256_COORDINATE or len(y) != _P256_COORDINATE:
                raise JwsError(INVALID_JWK, "P-256 coordinates are 32 bytes each")
            key: PublicKey = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
            alg = ES256
            public = {"kty": "EC", "crv": "P-256", "x": str(jwk["x"]), "y": str(jwk["y"])}
        elif kty == "OKP" and crv == "Ed25519":
            x = _b64decode(str(jwk["x"]), "JWK member x")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
            alg = EDDSA
            public = {"kty": "OKP", "crv": "Ed25519", "x": str(jwk["x"])}
        else:
            raise JwsError(
                INVALID_JWK, "only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are accepted"
            )
    except KeyError as error:
        raise JwsError(INVALID_JWK, f"the JWK lacks the member {error.args[0]!r}") from None
    except JwsError as error:
        raise JwsError(INVALID_JWK, error.detail) from None
    except ValueError:
        raise JwsError(INVALID_JWK, "the JWK is not a point of its curve") from None
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise JwsError(INVALID_JWK, f"a {kty} {crv} key signs {alg}, not {declared}")
    thumbprint = jwk_thumbprint(public)
    kid = jwk.get("kid", thumbprint)
    if not isinstance(kid, str) or not 1 <= len(kid) <= _MAX_KID_CHARS or not kid.isprintable():
        raise JwsError(INVALID_JWK, f"kid must be 1-{_MAX_KID_CHARS} printable characters")
    return PublicJwk(kid, alg, key, {**public, "kid": kid, "alg": alg}, thumbprint)


def public_jwk(key: PrivateKey | PublicKey, kid: str | None = None) -> dict[str, str]:
    """The public JWK of a key (for issuers' tooling and tests)."""
    public = (
        key.public_key()
        if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        else key
    )
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64encode(raw)}
    else:
        numbers = public.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64encode(numbers.x.to_bytes(_P256_COORDINATE, "big")),
            "y": _b64encode(numbers.y.to_bytes(_P256_COORDINATE, "big")),
        }
    jwk["kid"] = kid or jwk_thumbprint(jwk)
    return jwk


def sign_document(payload: Mapping[str, Any], key: PrivateKey, kid: str) -> str:
    """JWS compact of the canonical form of `payload` (what an issuer does; for tooling and
    tests: the service itself never signs documents)."""
    alg = EDDSA if isinstance(key, ed25519.Ed25519PrivateKey) else ES256
    header = canonicalize({"alg": alg, "kid": kid, "typ": DOCUMENT_TYP})
    signing_input = f"{_b64encode(header)}.{_b64encode(canonicalize(dict(payload)))}".encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(signing_input)
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64encode(signature)}"


@dataclass(frozen=True, slots=True)
class _Parts:
    header: dict[str, Any]
    payload_b64: str
    signing_input: bytes
    signature: bytes


def _split(compact: str) -> _Parts:
    if not isinstance(compact, str) or len(compact) > MAX_JWS_CHARS:
        raise JwsError(MALFORMED, f"a signed document is a string of at most {MAX_JWS_CHARS}")
    parts = compact.split(".")
    if len(parts) != 3:
        raise JwsError(MALFORMED, "a JWS compact serialisation has three parts")
    header_b64, payload_b64, signature_b64 = parts
    if len(header_b64) > _MAX_HEADER_CHARS:
        raise JwsError(MALFORMED, "the JWS header is too large")
    header = _json_object(_b64decode(header_b64, "JWS header"), "JWS header")
    signature = _b64decode(signature_b64, "signature")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return _Parts(header, payload_b64, signing_input, signature)


def read_kid(compact: str) -> str:
    """The `kid` of a signed document's header, unverified (to pick the key).

    :raises JwsError: (`malformed`)
    """
    kid = _split(compact).header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwsError(MALFORMED, "the JWS header lacks a kid")
    return kid


def verify_document(compact: str, keys: Mapping[str, PublicJwk]) -> VerifiedDocument:
    """Verifies a signed document against the keys (by kid) the caller trusts now.

    Order: shape and size, header (`alg` allowed, `kid` known, `typ`, no `crit`), signature,
    then the payload: a JSON object in RFC 8785 canonical form.

    :raises JwsError: with code `malformed`, `algorithm_not_allowed`, `unknown_key`,
        `bad_signature` or `not_canonical`.
    """
    parts = _split(compact)
    header = parts.header
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise JwsError(ALGORITHM_NOT_ALLOWED, f"alg must be one of {', '.join(ALGORITHMS)}")
    if "crit" in header:
        raise JwsError(MALFORMED, "no critical header extension is understood")
    if header.get("typ", DOCUMENT_TYP) != DOCUMENT_TYP:
        raise JwsError(MALFORMED, f"typ, when present, must be {DOCUMENT_TYP}")
    if not isinstance(kid, str) or not kid:
        raise JwsError(MALFORMED, "the JWS header lacks a kid")
    key = keys.get(kid)
    if key is None:
        raise JwsError(UNKNOWN_KEY, f"no trusted key {kid[:_MAX_KID_CHARS]!r} of this issuer")
    if key.alg != (EDDSA if alg == ED25519 else alg):
        raise JwsError(ALGORITHM_NOT_ALLOWED, f"key {kid!r} signs {key.alg}, not {alg}")
    _check_signature(key, parts.signing_input, parts.signature)
    payload_bytes = _b64decode(parts.payload_b64, "payload")
    payload = _json_object(payload_bytes, "payload")
    if canonicalize(payload) != payload_bytes:
        raise JwsError(NOT_CANONICAL, "the payload is not RFC 8785 canonical JSON")
    return VerifiedDocument(kid, alg, payload, payload_bytes)


def _check_signature(key: PublicJwk, signing_input: bytes, signature: bytes) -> None:
    try:
        if isinstance(key.key, ed25519.Ed25519PublicKey):
            key.key.verify(signature, signing_input)
            return
        if len(signature) != 2 * _P256_COORDINATE:
            raise InvalidSignature
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        key.key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise JwsError(BAD_SIGNATURE, "the signature does not verify") from None
