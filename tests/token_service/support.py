"""Helpers of the token library tests: a controllable clock and token forging tools."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from token_service import KeyRing
from token_service._base45 import b45decode, b45encode
from token_service.codec import P256_ORDER, PREFIX, low_s_signature

START = 1_750_000_000.0
ISSUER = "360000"
OTHER_ISSUER = "440300"
GRACE = 3_600.0


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cose_bytes(token: str) -> bytes:
    """The COSE_Sign1 bytes inside a token string."""
    return b45decode(token.removeprefix(PREFIX))


def rewrap(token: str, change: Callable[[bytes], bytes]) -> str:
    """A token whose COSE bytes went through `change` (tampering, truncation, ...)."""
    return PREFIX + b45encode(change(cose_bytes(token)))


def claims_map(
    *, issued_at: int = int(START), lifetime: int = 60, issuer: str = ISSUER
) -> dict[int, object]:
    """A well-formed claims map, to be altered by a test before `forge` signs it."""
    return {
        1: issuer,
        6: issued_at,
        4: issued_at + lifetime,
        7: secrets.token_bytes(8),
        -65_001: secrets.token_bytes(16),
    }


def forge(
    ring: KeyRing,
    payload: bytes,
    *,
    protected: bytes | None = None,
    unprotected: dict[int, object] | None = None,
    tag: int | None = 18,
) -> str:
    """A token with whatever payload and headers, validly signed by the ring's active key.

    Lets a test show that the structure is checked, not only the signature.
    """
    signing = ring.signing_key
    if protected is None:
        protected = cbor2.dumps({1: -7, 4: signing.kid})
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = low_s_signature(signing.private_key.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
    message: object = [
        protected,
        unprotected or {},
        payload,
        signature,
    ]
    if tag is not None:
        message = cbor2.CBORTag(tag, message)
    return PREFIX + b45encode(cbor2.dumps(message))


def high_s_twin(token: str) -> str:
    """The token with its signature `(r, s)` replaced by `(r, n - s)`: ECDSA verifies both,
    and anyone can make the twin without the key."""
    return rewrap(token, lambda data: data[:-32] + twin_s(data[-32:]))


def twin_s(s: bytes) -> bytes:
    """`n - s` of a 32-byte big-endian `s`."""
    return (P256_ORDER - int.from_bytes(s, "big")).to_bytes(32, "big")
