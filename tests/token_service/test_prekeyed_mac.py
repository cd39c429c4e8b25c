"""The pre-keyed HMAC-SHA256 gives exactly the standard library's HMAC-SHA256, for keys of
every length around SHA-256's block (shorter, equal, longer: hashed first) and any message."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from token_service.prekeyed_mac import PrekeyedHmacSha256


@pytest.mark.parametrize("key_length", range(0, 140))
def test_equals_hmac_for_every_key_length(key_length: int) -> None:
    key = os.urandom(key_length)
    mac = PrekeyedHmacSha256(key)
    for message in (b"", b"x", os.urandom(32), os.urandom(200)):
        assert mac.digest(message) == hmac.new(key, message, hashlib.sha256).digest()


@given(st.binary(max_size=150), st.lists(st.binary(max_size=100), min_size=1, max_size=4))
def test_equals_hmac_for_any_key_and_messages_in_turn(key: bytes, messages: list[bytes]) -> None:
    """One keyed object serves many messages: none leaks into the next."""
    mac = PrekeyedHmacSha256(key)
    for message in messages:
        assert mac.digest(message) == hmac.new(key, message, hashlib.sha256).digest()


def test_keys_differing_in_one_byte_give_different_macs() -> None:
    key = bytearray(os.urandom(32))
    first = PrekeyedHmacSha256(bytes(key)).digest(b"card")
    key[31] ^= 1
    assert PrekeyedHmacSha256(bytes(key)).digest(b"card") != first
