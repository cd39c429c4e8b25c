"""The narrow CBOR reader and the deterministic encoder, against cbor2 as a reference."""

from __future__ import annotations

import cbor2
import pytest

from token_service import _cbor


class TestEncode:
    @pytest.mark.parametrize(
        "item",
        [0, 23, 24, 255, 256, 65_535, 65_536, 2**32, 2**64 - 1, -1, -24, -25, -65_001, b"", "iss"],
    )
    def test_matches_cbor2_canonical(self, item: int | bytes | str) -> None:
        assert _cbor.encode(item) == cbor2.dumps(item, canonical=True)

    def test_map_keys_sorted_by_encoding(self) -> None:
        item: dict[int, _cbor.CborValue] = {-65_001: b"h", 7: b"c", 1: "iss", 6: 1, 4: 2}
        assert _cbor.encode(item) == cbor2.dumps(item, canonical=True)
        assert list(cbor2.loads(_cbor.encode(item))) == [1, 4, 6, 7, -65_001]

    def test_refuses_integers_beyond_64_bits(self) -> None:
        with pytest.raises(ValueError, match="64 bits"):
            _cbor.encode(2**64)

    def test_refuses_other_types(self) -> None:
        with pytest.raises(TypeError):
            _cbor.encode(True)


class TestReadHead:
    def test_reads_preferred_heads(self) -> None:
        assert _cbor.read_head(b"\x1a\x00\x01\x00\x00", 0) == (_cbor.UINT, 65_536, 5)
        assert _cbor.read_head(b"\x58\x18", 0) == (_cbor.BYTES, 24, 2)

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"\x18\x05", "preferred"),  # 5 fits the initial byte
            (b"\x19\x00\xff", "preferred"),
            (b"\x5f", "indefinite"),  # indefinite-length byte string
            (b"\x9f", "indefinite"),
            (b"\x1c", "reserved"),
            (b"\x1a\x00\x01", "truncated"),
            (b"", "truncated"),
        ],
    )
    def test_rejects_unexpected_heads(self, data: bytes, reason: str) -> None:
        with pytest.raises(_cbor.CborError, match=reason):
            _cbor.read_head(data, 0)
