"""Base45 (RFC 9285): test vectors, every 16-bit group, and rejection of invalid text."""

from __future__ import annotations

import pytest

from token_service._base45 import ALPHABET, Base45Error, b45decode, b45encode

RFC_9285_VECTORS = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


class TestVectors:
    @pytest.mark.parametrize(("data", "text"), RFC_9285_VECTORS)
    def test_encodes_as_the_rfc(self, data: bytes, text: str) -> None:
        assert b45encode(data) == text

    @pytest.mark.parametrize(("data", "text"), RFC_9285_VECTORS)
    def test_decodes_as_the_rfc(self, data: bytes, text: str) -> None:
        assert b45decode(text) == data


class TestExhaustive:
    def test_every_two_byte_group_matches_the_definition(self) -> None:
        # One input holding all 65536 groups checks the multiply-and-shift division constants.
        data = b"".join(value.to_bytes(2, "big") for value in range(1 << 16))
        expected = "".join(
            ALPHABET[value % 45] + ALPHABET[value // 45 % 45] + ALPHABET[value // 2025]
            for value in range(1 << 16)
        )
        assert b45encode(data) == expected
        assert b45decode(expected) == data

    def test_every_single_trailing_byte(self) -> None:
        for value in range(256):
            text = b45encode(bytes((value,)))
            assert text == ALPHABET[value % 45] + ALPHABET[value // 45]
            assert b45decode(text) == bytes((value,))


class TestRejects:
    @pytest.mark.parametrize(
        "text",
        [
            "A",  # a dangling single character
            "BB8A",  # a dangling character after a group
            "bb8",  # lower case is outside the alphabet
            "BB#",  # '#' is outside the alphabet
            "GGW",  # 16 + 16*45 + 32*2025 = 65536, one past the largest group value
            ":::",  # the largest group, 91124
            "::",  # 44 + 44*45 = 2024 > 255 for a final pair
            "BB\u00e9",  # non-ASCII
        ],
    )
    def test_invalid_text(self, text: str) -> None:
        with pytest.raises(Base45Error):
            b45decode(text)
