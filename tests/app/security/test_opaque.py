"""Opaque secrets: generated once, stored only as an HMAC, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.security import (
    constant_time_equals,
    hash_opaque_secret,
    new_opaque_secret,
    opaque_secret_matches,
)

KEY = b"k" * 32


class TestNewOpaqueSecret:
    def test_is_the_prefix_and_32_random_bytes_in_base64url(self) -> None:
        secret = new_opaque_secret("rt_")
        assert re.fullmatch(r"rt_[A-Za-z0-9_-]{43}", secret)
        assert len(base64.urlsafe_b64decode(secret[3:] + "=")) == 32

    def test_secrets_are_unique(self) -> None:
        assert len({new_opaque_secret("cs_") for _ in range(100)}) == 100

    @pytest.mark.parametrize("prefix", ["", "rt", "RT_", "_", "toolongprefix_", "r t_"])
    def test_refuses_prefixes_that_are_not_a_short_lower_case_tag(self, prefix: str) -> None:
        with pytest.raises(ValueError, match="prefix"):
            new_opaque_secret(prefix)


class TestHashOpaqueSecret:
    def test_is_hex_hmac_sha256_under_the_key(self) -> None:
        expected = hmac.new(KEY, b"rt_abc", hashlib.sha256).hexdigest()
        assert hash_opaque_secret("rt_abc", KEY) == expected

    def test_depends_on_the_key(self) -> None:
        assert hash_opaque_secret("rt_abc", KEY) != hash_opaque_secret("rt_abc", b"l" * 32)

    def test_refuses_a_short_key(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            hash_opaque_secret("rt_abc", b"k" * 16)


class TestMatching:
    def test_the_issued_secret_matches_its_stored_hash(self) -> None:
        secret = new_opaque_secret("rt_")
        assert opaque_secret_matches(secret, KEY, hash_opaque_secret(secret, KEY))

    def test_another_secret_does_not_match(self) -> None:
        stored = hash_opaque_secret(new_opaque_secret("rt_"), KEY)
        assert not opaque_secret_matches(new_opaque_secret("rt_"), KEY, stored)

    def test_an_absurdly_long_secret_does_not_match(self) -> None:
        long_secret = "rt_" + "a" * 10_000
        assert not opaque_secret_matches(long_secret, KEY, hash_opaque_secret(long_secret, KEY))

    @given(presented=st.text(max_size=80), stored=st.text(max_size=80))
    def test_any_text_gives_an_answer(self, presented: str, stored: str) -> None:
        assert opaque_secret_matches(presented, KEY, stored) is False

    def test_constant_time_equals_accepts_any_text(self) -> None:
        assert constant_time_equals("张三", "张三")
        assert not constant_time_equals("张三", "张四")
        assert not constant_time_equals("\ud800", "a")
