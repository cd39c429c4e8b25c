"""HMAC-SHA256 under a fixed key, keyed once.

The verify path computes one HMAC per scan (the pairwise pseudonym) under a key that never
changes while the worker runs. The standard library's `hmac` object, copied per message,
spends more in its Python layers (`copy`, `update`, `digest`) than in hashing 32 bytes. This is
RFC 2104 as `hmac` itself computes it without OpenSSL (`hmac.HMAC._init_old`): the key padded
to SHA-256's block, XORed with the inner and outer pads, each hashed once here; a message
then costs two copies of those states and two short updates. Equal to `hmac.new(key, message,
hashlib.sha256).digest()` for every key length (tests/token_service/test_prekeyed_mac.py).
"""

from __future__ import annotations

import hashlib

_BLOCK = 64
"""SHA-256's block size in bytes: longer keys are hashed first (RFC 2104 section 2)."""
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class PrekeyedHmacSha256:
    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
