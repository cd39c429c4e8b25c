"""Public keys a verifier holds for one party, read from a JWK set, a COSE key set or a ring.

Every key is an ES256 (P-256) key whose kid is the profile's kid (`key_id`): the first
8 bytes of the SHA-256 of its SubjectPublicKeyInfo. A key whose kid does not match is
refused, so a kid can never be re-pointed at another key inside a signed list.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from token_service import _cbor
from token_service._cose import Cbor, decode
from token_service.errors import TokenServiceError
from token_service.keys import KID_LENGTH, KeyRing, b64url, key_id

_COORDINATE_LENGTH = 32
_COSE_KTY, _COSE_KID, _COSE_ALG = 1, 2, 3
_COSE_CRV, _COSE_X, _COSE_Y = -1, -2, -3
_COSE_KTY_EC2, _COSE_ALG_ES256, _COSE_CRV_P256 = 2, -7, 1
MAX_KEYS = 64
"""More keys than any issuer publishes (next, active, retired in grace)."""


class KeySetError(TokenServiceError, ValueError):
    """A published key set cannot be read or contains a key outside the profile."""

    code = "key_set"


class PublicKeySet:
    """kid -> P-256 public key, immutable. Implements `find` like `KeyRing`."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[bytes, ec.EllipticCurvePublicKey]] = ()) -> None:
        """:raises KeySetError: on a kid that is not the key's `key_id`, or too many keys."""
        table: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for kid, public_key in keys:
            if not isinstance(public_key.curve, ec.SECP256R1) or key_id(public_key) != kid:
                raise KeySetError(f"kid {b64url(kid)} is not the key id of a P-256 key")
            table[kid] = public_key
        if len(table) > MAX_KEYS:
            raise KeySetError(f"more than {MAX_KEYS} keys")
        self._keys = table

    @classmethod
    def from_keyring(cls, ring: KeyRing) -> PublicKeySet:
        """The keys a ring publishes now (next, active, retired within grace)."""
        return cls((key.kid, key.public_key) for key in ring.published())

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> PublicKeySet:
        """Reads an RFC 7517 JWK set {"keys": [...]}; members other than the key are ignored.

        :raises KeySetError: on anything but EC P-256 keys with the profile's kid.
        """
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise KeySetError("a JWK set has a list of keys")
        return cls(public_key_from_jwk(jwk) for jwk in keys)

    @classmethod
    def from_cose_key_set(cls, data: bytes) -> PublicKeySet:
        """Reads a CBOR array of COSE_Key maps (RFC 9052 section 7).

        :raises KeySetError: on anything but EC2 P-256 keys with the profile's kid.
        """
        try:
            keys = decode(data)
        except _cbor.CborError as error:
            raise KeySetError(f"not a COSE key set: {error}") from None
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise KeySetError("a COSE key set is an array of keys")
        return cls(public_key_from_cose(key) for key in keys)

    def find(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The public key with this kid, or None."""
        return self._keys.get(kid)

    def items(self) -> list[tuple[bytes, ec.EllipticCurvePublicKey]]:
        """(kid, public key) pairs, in kid order."""
        return sorted(self._keys.items(), key=lambda item: item[0])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The keys as an RFC 7517 JWK set."""
        return {"keys": [jwk_of(kid, key) for kid, key in self.items()]}

    def cose_keys(self) -> list[Cbor]:
        """The keys as COSE_Key maps."""
        return [cose_key_of(kid, key) for kid, key in self.items()]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[bytes]:
        return iter(sorted(self._keys))

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKeySet):
            return NotImplemented
        return self.jwks() == other.jwks()

    def __hash__(self) -> int:
        return hash(tuple(self._keys))

    def __repr__(self) -> str:
        return f"PublicKeySet({[b64url(kid) for kid in self]})"


def _coordinates(public_key: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    numbers = public_key.public_numbers()
    return (
        numbers.x.to_bytes(_COORDINATE_LENGTH, "big"),
        numbers.y.to_bytes(_COORDINATE_LENGTH, "big"),
    )


def jwk_of(kid: bytes, public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The RFC 7517 JWK of a P-256 public key."""
    x, y = _coordinates(public_key)
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(x),
        "y": b64url(y),
        "kid": b64url(kid),
        "alg": "ES256",
        "use": "sig",
    }


def cose_key_of(kid: bytes, public_key: ec.EllipticCurvePublicKey) -> Cbor:
    """The RFC 9053 COSE_Key map of a P-256 public key."""
    x, y = _coordinates(public_key)
    return {
        _COSE_KTY: _COSE_KTY_EC2,
        _COSE_KID: kid,
        _COSE_ALG: _COSE_ALG_ES256,
        _COSE_CRV: _COSE_CRV_P256,
        _COSE_X: x,
        _COSE_Y: y,
    }


def _point(x: object, y: object) -> ec.EllipticCurvePublicKey:
    if not (
        isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == _COORDINATE_LENGTH
    ):
        raise KeySetError("P-256 coordinates are 32 bytes each")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError:
        raise KeySetError("the point is not on P-256") from None


def public_key_from_cose(key: object) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """(kid, key) of a COSE_Key map of an EC2 P-256 key.

    :raises KeySetError: on any other map.
    """
    if not isinstance(key, dict):
        raise KeySetError("a COSE_Key is a map")
    if key.get(_COSE_KTY) != _COSE_KTY_EC2 or key.get(_COSE_CRV) != _COSE_CRV_P256:
        raise KeySetError("only EC2 P-256 keys are used")
    if key.get(_COSE_ALG, _COSE_ALG_ES256) != _COSE_ALG_ES256:
        raise KeySetError("only ES256 keys are used")
    kid = key.get(_COSE_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_LENGTH:
        raise KeySetError("a COSE_Key needs an 8-byte kid")
    return kid, _point(key.get(_COSE_X), key.get(_COSE_Y))


def public_key_from_jwk(jwk: object) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """(kid, key) of an EC P-256 JWK.

    :raises KeySetError: on any other JWK.
    """
    if not isinstance(jwk, Mapping):
        raise KeySetError("a JWK is an object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeySetError("only EC P-256 keys are used")
    if jwk.get("alg", "ES256") != "ES256":
        raise KeySetError("only ES256 keys are used")
    kid = _b64url_member(jwk, "kid")
    if len(kid) != KID_LENGTH:
        raise KeySetError("a JWK needs an 8-byte kid")
    return kid, _point(_b64url_member(jwk, "x"), _b64url_member(jwk, "y"))


def _b64url_member(jwk: Mapping[Any, Any], name: str) -> bytes:
    text = jwk.get(name)
    if not isinstance(text, str):
        raise KeySetError(f"JWK member {name} must be base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeySetError(f"JWK member {name} is not base64url") from None
    if b64url(data) != text:
        raise KeySetError(f"JWK member {name} is not canonical base64url")
    return data
