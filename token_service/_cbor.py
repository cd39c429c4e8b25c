"""The few CBOR (RFC 8949) pieces the token and key formats need.

The encoder writes deterministic CBOR (preferred serialization, map keys sorted by their
encoded bytes). The reader is deliberately narrow: definite lengths and preferred
serialization only, so one logical token has exactly one byte form and a parser sees no
indefinite-length, reserved or oversized heads.
"""

from __future__ import annotations

from typing import TypeAlias

CborValue: TypeAlias = "int | bytes | str | list[CborValue] | dict[int, CborValue]"

UINT = 0
NINT = 1
BYTES = 2
TEXT = 3
ARRAY = 4
MAP = 5
TAG = 6

# Smallest argument that may use a 1-, 2-, 4- or 8-byte extension (preferred serialization).
_MINIMUM_FOR_WIDTH = {1: 24, 2: 0x100, 4: 0x10000, 8: 0x1_0000_0000}


class CborError(ValueError):
    """The bytes are not CBOR of the narrow shape this library accepts."""


def head(major: int, argument: int) -> bytes:
    """Encodes an item head in its preferred (shortest) form.

    :raises ValueError: if the argument does not fit 64 bits.
    """
    kind = major << 5
    if argument < 24:
        return bytes((kind | argument,))
    if argument < 0x100:
        return bytes((kind | 24, argument))
    if argument < 0x10000:
        return bytes((kind | 25,)) + argument.to_bytes(2, "big")
    if argument < 0x1_0000_0000:
        return bytes((kind | 26,)) + argument.to_bytes(4, "big")
    if argument < 1 << 64:
        return bytes((kind | 27,)) + argument.to_bytes(8, "big")
    raise ValueError("CBOR argument does not fit 64 bits")


def encode(item: CborValue) -> bytes:
    """Encodes integers, byte and text strings, arrays and integer-keyed maps deterministically.

    :raises ValueError: on an integer outside the 64-bit CBOR range.
    :raises TypeError: on any other type.
    """
    if isinstance(item, bool):
        raise TypeError("booleans are not used in these formats")
    if isinstance(item, int):
        return head(UINT, item) if item >= 0 else head(NINT, -1 - item)
    if isinstance(item, bytes):
        return head(BYTES, len(item)) + item
    if isinstance(item, str):
        text = item.encode("utf-8")
        return head(TEXT, len(text)) + text
    if isinstance(item, list):
        return head(ARRAY, len(item)) + b"".join(encode(element) for element in item)
    if isinstance(item, dict):
        entries = sorted((encode(key), encode(value)) for key, value in item.items())
        return head(MAP, len(entries)) + b"".join(key + value for key, value in entries)
    raise TypeError(f"cannot encode {type(item).__name__} as CBOR")


def read_head(data: bytes, position: int) -> tuple[int, int, int]:
    """Reads one item head.

    :returns: (major type, argument, position after the head).
    :raises CborError: on truncation, an indefinite length, a reserved value or a head that
        is longer than needed.
    """
    if position >= len(data):
        raise CborError("truncated")
    initial = data[position]
    info = initial & 0x1F
    if info < 24:
        return initial >> 5, info, position + 1
    if info > 27:
        raise CborError("indefinite length or reserved additional information")
    width = 1 << (info - 24)
    end = position + 1 + width
    if end > len(data):
        raise CborError("truncated")
    argument = int.from_bytes(data[position + 1 : end], "big")
    if argument < _MINIMUM_FOR_WIDTH[width]:
        raise CborError("not in preferred serialization")
    return initial >> 5, argument, end
