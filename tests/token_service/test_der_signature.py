"""A token's `r || s` signature becomes the DER ECDSA-Sig-Value `cryptography` verifies:
exactly the bytes its own encoder writes, for every shape of the two halves, and one that
still verifies."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from token_service.codec import P256_ORDER, der_signature


def by_cryptography(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def half(value: int) -> bytes:
    return value.to_bytes(32, "big")


EDGES = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    2**247 - 1,  # 31 bytes, top bit set in the first
    2**248,  # 32 bytes, first byte 0x01
    2**255 - 1,  # first byte 0x7f: no zero byte
    2**255,  # first byte 0x80: a zero byte before it
    P256_ORDER - 1,
    2**256 - 1,
]


@pytest.mark.parametrize("r", EDGES)
@pytest.mark.parametrize("s", EDGES)
def test_every_edge_of_either_half_encodes_as_cryptography_does(r: int, s: int) -> None:
    raw = half(r) + half(s)
    assert der_signature(raw) == by_cryptography(raw)
    assert decode_dss_signature(der_signature(raw)) == (r, s)


@given(st.binary(min_size=64, max_size=64), st.integers(0, 32), st.integers(0, 32))
def test_any_signature_with_any_leading_zeros_encodes_as_cryptography_does(
    raw: bytes, zeros_r: int, zeros_s: int
) -> None:
    raw = bytes(zeros_r) + raw[zeros_r:32] + bytes(zeros_s) + raw[32 + zeros_s :]
    assert der_signature(raw) == by_cryptography(raw)


def test_a_real_signature_verifies_through_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = os.urandom(100)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    key.public_key().verify(der_signature(half(r) + half(s)), message, ec.ECDSA(hashes.SHA256()))
