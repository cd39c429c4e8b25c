"""Token Status List (IETF draft-ietf-oauth-status-list): one status per card, signed.

Each card has an index in its issuer's list; tokens carry it (claim -65002). The list is a
byte array with `bits` bits per entry: entry i lives in byte `i * bits // 8`, at bit offset
`i * bits % 8` counted from the least significant bit. It is published zlib-compressed
(RFC 1950, DEFLATE) inside a signed CWT (COSE_Sign1, `application/statuslist+cwt`) or JWT
(`statuslist+jwt`), both signed with the issuer's key ring.

Values (2 bits): 0 VALID, 1 INVALID (cancelled or replaced: final), 2 SUSPENDED
(administrator, reversible), and 3, which the draft leaves to applications: here LOST
(the holder reported the card lost; reversible by 解挂).

Linkability: two tokens with the same index belong to the same card, even though their
sealed handles differ. An issuer may give each card several indexes, all set together, and
put a different one in each token (this service does: `app.cards.status_indexes`), and
give a replaced card fresh indexes; indexes allocated at random in a list of fixed capacity
reveal nothing about age or region, and the whole list is downloaded, so fetching it
reveals nothing about the card being checked. A verifier reads the entry of the token's
index and needs to know nothing of this.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from token_service import _cose
from token_service._cose import Cbor, DocumentError, KeyLookup, claim
from token_service.keys import KeyRing, b64url

CWT_TYPE = "application/statuslist+cwt"
JWT_TYPE = "statuslist+jwt"
BITS = (1, 2, 4, 8)
MAX_LIST_BYTES = 64 * 1024 * 1024
"""Largest uncompressed list accepted (256 Mi entries at 2 bits: 10 M cards with a pool of
16 indexes each, at 60 % fill): stops zlib bombs."""
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""Largest signed status list accepted before parsing (10 M cards with a pool of 16 indexes
and 5 % of them not valid sign to about 10 MB: load/RESULTS.md)."""

CLAIM_SUB, CLAIM_EXP, CLAIM_IAT = 2, 4, 6
CLAIM_TTL = 65534
CLAIM_STATUS_LIST = 65533


class Status(IntEnum):
    """The status of a card in a 2-bit list."""

    VALID = 0
    INVALID = 1
    SUSPENDED = 2
    LOST = 3
    """Application-specific value 0x03 of the draft: reported lost, reversible."""


class StatusListError(DocumentError):
    """A status list or its signed form is malformed, wrongly signed or expired."""

    code = "status_list_invalid"


class StatusList:
    """A mutable array of `size` statuses of `bits` bits each, all VALID at first.

    The size is rounded up to fill the last byte: the serialized form cannot tell.
    """

    __slots__ = ("_bits", "_compressed", "_data")

    def __init__(self, size: int, bits: int = 2) -> None:
        """:raises ValueError: on a negative size, a size over the limit or bits not in 1/2/4/8."""
        if bits not in BITS:
            raise ValueError("bits is 1, 2, 4 or 8")
        if size < 0 or -(-size * bits // 8) > MAX_LIST_BYTES:
            raise ValueError(f"size must be 0 to {MAX_LIST_BYTES * 8 // bits}")
        self._bits = bits
        self._data = bytearray(-(-size * bits // 8))
        self._compressed: bytes | None = None

    @classmethod
    def from_bytes(cls, data: bytes, bits: int = 2) -> StatusList:
        """The list whose uncompressed byte array is `data`."""
        status_list = cls(0, bits)
        if len(data) > MAX_LIST_BYTES:
            raise ValueError("status list too large")
        status_list._data = bytearray(data)
        status_list._compressed = None
        return status_list

    @property
    def bits(self) -> int:
        """Bits per entry."""
        return self._bits

    @property
    def size(self) -> int:
        """Number of entries."""
        return len(self._data) * 8 // self._bits

    def get(self, index: int) -> int:
        """The status value at `index`.

        :raises IndexError: outside 0..size-1.
        """
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self._bits) - 1)

    def set(self, index: int, value: int) -> None:
        """Sets the status value at `index`.

        :raises IndexError: outside 0..size-1.
        :raises ValueError: on a value that does not fit `bits`.
        """
        mask = (1 << self._bits) - 1
        if not 0 <= value <= mask:
            raise ValueError(f"a status of {self._bits} bits is 0 to {mask}")
        byte, shift = self._locate(index)
        self._data[byte] = (self._data[byte] & ~(mask << shift)) | (value << shift)
        self._compressed = None

    def to_bytes(self) -> bytes:
        """The uncompressed byte array."""
        return bytes(self._data)

    def compress(self) -> bytes:
        """The byte array compressed with zlib (RFC 1950) at the highest level, as the draft
        recommends; kept until the next `set`, so the CWT and JWT forms compress once."""
        if self._compressed is None:
            self._compressed = zlib.compress(self._data, level=9)
        return self._compressed

    @classmethod
    def decompress(cls, data: bytes, bits: int = 2) -> StatusList:
        """The list of a zlib-compressed byte array, refused beyond `MAX_LIST_BYTES`.

        :raises StatusListError: on invalid or oversized zlib data, or bits not in 1/2/4/8.
        """
        if bits not in BITS:
            raise StatusListError("bits is 1, 2, 4 or 8")
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(data, MAX_LIST_BYTES)
        except zlib.error as error:
            raise StatusListError(f"bad zlib data: {error}") from None
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise StatusListError("zlib data truncated, oversized or followed by garbage")
        return cls.from_bytes(raw, bits)

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"status index {index} outside 0..{self.size - 1}")
        position = index * self._bits
        return position // 8, position % 8

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return self._bits == other._bits and self._data == other._data

    def __hash__(self) -> int:
        return hash((self._bits, bytes(self._data)))

    def __repr__(self) -> str:
        return f"StatusList(size={self.size}, bits={self._bits})"


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified signed status list: its URI (`sub`), times (unix seconds) and the list."""

    uri: str
    issued_at: int
    expires_at: int | None
    ttl: int | None
    status_list: StatusList
    kid: bytes


def sign_status_list_cwt(
    status_list: StatusList,
    *,
    uri: str,
    keyring: KeyRing,
    issued_at: int,
    expires_in: int,
    ttl: int | None = None,
) -> bytes:
    """The signed CWT form: COSE_Sign1 with typ `application/statuslist+cwt`.

    :param uri: the list's stable URL, the `sub` that tokens' status references name.
    :param expires_in: seconds from `issued_at` to `exp`.
    :param ttl: seconds a relying party may cache the list before fetching it again.
    """
    claims: dict[int | str, Cbor] = {
        CLAIM_SUB: uri,
        CLAIM_IAT: issued_at,
        CLAIM_EXP: issued_at + expires_in,
        CLAIM_STATUS_LIST: {"bits": status_list.bits, "lst": status_list.compress()},
    }
    if ttl is not None:
        claims[CLAIM_TTL] = ttl
    return _cose.sign1(_cose.encode(claims), content_type=CWT_TYPE, signing=keyring.signing_key)


def sign_status_list_jwt(
    status_list: StatusList,
    *,
    uri: str,
    keyring: KeyRing,
    issued_at: int,
    expires_in: int,
    ttl: int | None = None,
) -> str:
    """The signed JWT form: ES256, typ `statuslist+jwt`; parameters as for the CWT."""
    claims: dict[str, Any] = {
        "sub": uri,
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "status_list": {"bits": status_list.bits, "lst": b64url(status_list.compress())},
    }
    if ttl is not None:
        claims["ttl"] = ttl
    return _cose.sign_jws(claims, typ=JWT_TYPE, signing=keyring.signing_key)


def verify_status_list_cwt(
    data: bytes,
    keys: KeyLookup,
    *,
    now: float,
    uri: str | None = None,
    clock_skew: float = 5,
    allow_expired: bool = False,
) -> StatusListToken:
    """Checks a signed CWT status list and returns it.

    :param keys: the issuer's public keys (`PublicKeySet`, or a `KeyRing`).
    :param uri: if given, the `sub` the list must have.
    :param allow_expired: accept a list past `exp` (an offline bundle reports staleness itself).
    :raises StatusListError: with `reason` malformed, wrong_type, unknown_key, bad_signature,
        expired, not_yet_valid or inconsistent (another URI).
    """
    kid, claims = _cose.open_sign1(
        data, keys, content_type=CWT_TYPE, max_size=MAX_DOCUMENT_BYTES, error=StatusListError
    )
    body = claim(claims, CLAIM_STATUS_LIST, dict, StatusListError)
    lst = claim(body, "lst", bytes, StatusListError)
    return _checked(
        uri=claim(claims, CLAIM_SUB, str, StatusListError),
        issued_at=claim(claims, CLAIM_IAT, int, StatusListError),
        expires_at=_optional_int(claims, CLAIM_EXP),
        ttl=_optional_int(claims, CLAIM_TTL),
        status_list=StatusList.decompress(lst, claim(body, "bits", int, StatusListError)),
        kid=kid,
        now=now,
        expected_uri=uri,
        clock_skew=clock_skew,
        allow_expired=allow_expired,
    )


def verify_status_list_jwt(
    text: str,
    keys: KeyLookup,
    *,
    now: float,
    uri: str | None = None,
    clock_skew: float = 5,
    allow_expired: bool = False,
) -> StatusListToken:
    """Checks a signed JWT status list and returns it; parameters as for the CWT.

    :raises StatusListError: as `verify_status_list_cwt`.
    """
    kid, claims = _cose.open_jws(
        text, keys, typ=JWT_TYPE, max_size=MAX_DOCUMENT_BYTES, error=StatusListError
    )
    body = claim(claims, "status_list", dict, StatusListError)
    lst = _cose.b64url_decode(claim(body, "lst", str, StatusListError), StatusListError)
    return _checked(
        uri=claim(claims, "sub", str, StatusListError),
        issued_at=claim(claims, "iat", int, StatusListError),
        expires_at=_optional_int(claims, "exp"),
        ttl=_optional_int(claims, "ttl"),
        status_list=StatusList.decompress(lst, claim(body, "bits", int, StatusListError)),
        kid=kid,
        now=now,
        expected_uri=uri,
        clock_skew=clock_skew,
        allow_expired=allow_expired,
    )


def _checked(
    *,
    uri: str,
    issued_at: int,
    expires_at: int | None,
    ttl: int | None,
    status_list: StatusList,
    kid: bytes,
    now: float,
    expected_uri: str | None,
    clock_skew: float,
    allow_expired: bool,
) -> StatusListToken:
    if expected_uri is not None and uri != expected_uri:
        raise StatusListError(f"list {uri!r} is not {expected_uri!r}", reason="inconsistent")
    _cose.check_times(
        issued_at,
        expires_at,
        now=now,
        skew=clock_skew,
        allow_expired=allow_expired,
        error=StatusListError,
    )
    return StatusListToken(uri, issued_at, expires_at, ttl, status_list, kid)


def _optional_int(claims: dict[Any, Any], key: int | str) -> int | None:
    if key not in claims:
        return None
    value: int = claim(claims, key, int, StatusListError)
    return value
