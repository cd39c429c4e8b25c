"""The `SSC1` QR token: `"SSC1:" + base45(COSE_Sign1)` carrying a CWT claims map.

Layout (RFC 9052 / RFC 8392), deterministic CBOR:

    18([ << {1: -7, 4: kid} >>, {}, << claims >>, r || s ])

Claims: 1 iss (text), 4 exp, 6 iat, 7 cti (8 random bytes), and two claims of this profile:

- `CLAIM_SEALED_HANDLE` (-65001): the 16-byte card handle encrypted with AES-CTR under the
  issuer's handle key, initial counter block `cti || 0^8`; unlinkable without that key, and
  integrity-protected by the signature.
- `CLAIM_STATUS_INDEX` (-65002, optional): the card's index in the issuer's status list.
- `CLAIM_PRESENTATION` (-65003, optional, unsigned): the token presents something other than
  the card itself, and names what (`PRESENTATION_LICENCE` = 1: one e-licence); its sealed
  handle is then the presentation's 16-byte id, not a card's, and only the issuer knows
  what it stands for. 4 bytes: a presentation token (without a status index) is 215
  characters, version 8 at M.

Budget: QR version 8 at error correction M holds 221 alphanumeric characters. A plain token
is 209 characters and one with a 32-bit status index 221: exactly full. Hence two choices:

- `iat` is the start of validity. The issuer writes no `nbf` (5 more bytes, 8 more characters:
  version 9): a prefetched token simply carries a future `iat`, which every verifier already
  refuses until it arrives (`not_yet_valid`). An `nbf` claim (5) is still decoded, for tokens
  of older issuers, and the later of `iat` and `nbf` starts validity.
- The private-use range of the CWT claims registry (below -65536) costs 5 bytes per key;
  -65001/-65002 lie in the "Specification Required" range and cost 3 bytes, to be registered
  with the national e-card specification.

The signature is `r || s` with `s` in the lower half of the P-256 group order ("low-S",
`s <= n/2`). ECDSA also verifies `(r, n - s)`, so without this rule every token has a second
spelling that anyone can make without the key; the issuer writes only the low-S one and
every verifier refuses the other (`bad_signature`). The signed documents (status lists,
trust lists, verifier bundles, as COSE_Sign1 or JWS) follow the same rule.

Decoding is strict: it accepts only this layout (tag 18, this exact protected header, an
empty unprotected map, preferred serialization, no unknown or duplicate claims, no trailing
bytes) and refuses strings longer than `MAX_TOKEN_CHARS` before decoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from token_service import _cbor
from token_service._base45 import Base45Error, b45decode, b45encode
from token_service.errors import MalformedTokenError, TokenBudgetError
from token_service.keys import KID_LENGTH

PREFIX = "SSC1:"
MAX_TOKEN_CHARS = 512
"""Longer strings are refused before any decoding (denial of service)."""
BUDGET_CHARS = 221
"""Longest token that still renders as QR version 8 at error correction M (alphanumeric mode).

Without a status index tokens stay at 220 or less; a 32-bit status index uses the last one.
"""

CTI_LENGTH = 8
HANDLE_LENGTH = 16
HANDLE_KEY_LENGTHS = (16, 32)
SIGNATURE_LENGTH = 64
MAX_ISSUER_BYTES = 64

ALG_ES256 = -7
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_IAT = 6
CLAIM_CTI = 7
CLAIM_SEALED_HANDLE = -65001
CLAIM_STATUS_INDEX = -65002
CLAIM_PRESENTATION = -65003
PRESENTATION_LICENCE = 1

_COSE_SIGN1_TAG = 18
_HEADER_ALG = 1
_HEADER_KID = 4
# Protected header {1: -7, 4: h'<8 bytes>'} up to the kid, and its byte-string head.
_PROTECTED_PREFIX = (
    bytes((0xA2, _HEADER_ALG))
    + _cbor.encode(ALG_ES256)
    + bytes((_HEADER_KID,))
    + _cbor.head(_cbor.BYTES, KID_LENGTH)
)
_PROTECTED_LENGTH = len(_PROTECTED_PREFIX) + KID_LENGTH
_TOKEN_START = bytes((0xC0 | _COSE_SIGN1_TAG, 0x84))
_EMPTY_MAP = 0xA0
_SIG_STRUCTURE_START = (
    bytes((0x84,)) + _cbor.encode("Signature1") + _cbor.head(_cbor.BYTES, _PROTECTED_LENGTH)
)
_EMPTY_BSTR = b"\x40"
_SIGNATURE_HEAD = _cbor.head(_cbor.BYTES, SIGNATURE_LENGTH)
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_OUTER_PREFIX = _TOKEN_START + _cbor.head(_cbor.BYTES, _PROTECTED_LENGTH) + _PROTECTED_PREFIX
_OUTER_PREFIX_LENGTH = len(_OUTER_PREFIX)
_PROTECTED_AT = len(_TOKEN_START) + 1
_KID_AT = _OUTER_PREFIX_LENGTH
_UNPROTECTED_AT = _KID_AT + KID_LENGTH
_PAYLOAD_AT = _UNPROTECTED_AT + 1
_MINIMUM_MESSAGE = _PAYLOAD_AT + 1 + len(_SIGNATURE_HEAD) + SIGNATURE_LENGTH


@dataclass(frozen=True, slots=True)
class Claims:
    """The claims of one token. Times are unix seconds."""

    issuer: str
    issued_at: int
    expires_at: int
    cti: bytes
    sealed_handle: bytes
    not_before: int | None = None
    status_index: int | None = None
    presentation: int | None = None


ClaimValues = tuple[str, int, int, bytes, bytes, int | None, int | None, int | None]
"""The fields of `Claims` in order, as the verifier's hot path takes them."""


@dataclass(frozen=True, slots=True)
class DecodedToken:
    """A structurally valid token whose signature has NOT been checked yet."""

    kid: bytes
    protected: bytes
    payload: bytes
    signature: bytes
    claims: Claims

    def signed_bytes(self) -> bytes:
        """The COSE Sig_structure ["Signature1", protected, h'', payload] the signature covers."""
        return sig_structure(self.protected, self.payload)

    def der_signature(self) -> bytes:
        """The signature as the DER ECDSA-Sig-Value `cryptography` verifies."""
        return der_signature(self.signature)


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""n, the order of the P-256 group."""
_HALF_ORDER = P256_ORDER // 2
_HALF_ORDER_BYTES = _HALF_ORDER.to_bytes(32, "big")


def low_s_signature(der: bytes) -> bytes:
    """The COSE `r || s` (64 bytes) of a DER ECDSA P-256 signature, made low-S (`low_s`)."""
    r, s = decode_dss_signature(der)
    return low_s(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def low_s(raw: bytes) -> bytes:
    """A 64-byte `r || s` signature with `s` replaced by `n - s` when above `n / 2`: the one
    spelling of the signature that verifiers accept (it verifies as the other does)."""
    if is_low_s(raw):
        return raw
    return raw[:32] + (P256_ORDER - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")


def is_low_s(raw: bytes) -> bool:
    """Whether a 64-byte COSE `r || s` signature has `s <= n / 2` (big-endian byte strings of
    one length compare as their numbers do)."""
    return raw[32:] <= _HALF_ORDER_BYTES


def der_signature(raw: bytes) -> bytes:
    """Converts a COSE r || s signature (64 bytes) to a DER ECDSA-Sig-Value, byte for byte
    what `encode_dss_signature` writes (tests/token_service/test_der_signature.py), without
    making two Python integers of the halves and back: a SEQUENCE of two INTEGERs, each its
    bytes without leading zeros, with one zero byte before a first byte of 0x80 or more
    (DER's positive integers; zero is one zero byte). At most 33 bytes each, so every
    length fits DER's one-byte form."""
    r, s = raw[:32].lstrip(b"\x00"), raw[32:].lstrip(b"\x00")
    if not r or r[0] > _DER_TOP_BIT_CLEAR:
        r = b"\x00" + r
    if not s or s[0] > _DER_TOP_BIT_CLEAR:
        s = b"\x00" + s
    r_length, s_length = len(r), len(s)
    return (
        bytes((_DER_SEQUENCE, r_length + s_length + 4, _DER_INTEGER, r_length))
        + r
        + bytes((_DER_INTEGER, s_length))
        + s
    )


_DER_SEQUENCE, _DER_INTEGER, _DER_TOP_BIT_CLEAR = 0x30, 0x02, 0x7F


class HandleCipher:
    """Seals and opens card handles: AES-CTR with the counter block `cti || 0^8`.

    A 16-byte handle needs exactly one keystream block, AES-ECB(key, cti || 0^8), so one ECB
    context is kept per key and reused, instead of building a CTR Cipher per token.
    """

    __slots__ = ("_block",)

    def __init__(self, handle_key: bytes) -> None:
        """:raises ValueError: unless the key is 16 or 32 bytes (AES-128 or AES-256)."""
        if len(handle_key) not in HANDLE_KEY_LENGTHS:
            raise ValueError("a handle key is 16 or 32 bytes")
        self._block = Cipher(algorithms.AES(handle_key), modes.ECB()).encryptor()  # noqa: S305

    def seal(self, handle: bytes, cti: bytes) -> bytes:
        """Encrypts a 16-byte card handle; `cti` (8 bytes, unique per token) is the nonce.

        :raises ValueError: on a wrong handle or cti length.
        """
        if len(handle) != HANDLE_LENGTH or len(cti) != CTI_LENGTH:
            raise ValueError("a card handle is 16 bytes and a cti 8 bytes")
        return self._apply(handle, cti)

    def open(self, sealed: bytes, cti: bytes) -> bytes:
        """Decrypts a sealed handle (lengths are guaranteed by the decoder)."""
        return self._apply(sealed, cti)

    def _apply(self, data: bytes, cti: bytes) -> bytes:
        keystream = self._block.update(cti + bytes(8))
        return (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")).to_bytes(
            HANDLE_LENGTH, "big"
        )


def protected_header(kid: bytes) -> bytes:
    """The serialized protected header {1: ES256, 4: kid}."""
    if len(kid) != KID_LENGTH:
        raise ValueError("a kid is 8 bytes")
    return _PROTECTED_PREFIX + kid


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The COSE Sig_structure for a COSE_Sign1 with no external AAD (RFC 9052 section 4.4)."""
    if len(protected) != _PROTECTED_LENGTH:
        return _cbor.encode(["Signature1", protected, b"", payload])
    return (
        _SIG_STRUCTURE_START
        + protected
        + _EMPTY_BSTR
        + _cbor.head(_cbor.BYTES, len(payload))
        + payload
    )


def encode_claims(claims: Claims) -> bytes:
    """The deterministic CBOR claims map (keys sorted by their encoding)."""
    if len(claims.cti) != CTI_LENGTH or len(claims.sealed_handle) != HANDLE_LENGTH:
        raise ValueError("a cti is 8 bytes and a sealed handle 16 bytes")
    if not claims.issuer or len(claims.issuer.encode("utf-8")) > MAX_ISSUER_BYTES:
        raise ValueError(f"an issuer code is 1 to {MAX_ISSUER_BYTES} bytes of UTF-8")
    entries: dict[int, _cbor.CborValue] = {
        CLAIM_ISS: claims.issuer,
        CLAIM_IAT: claims.issued_at,
        CLAIM_EXP: claims.expires_at,
        CLAIM_CTI: claims.cti,
        CLAIM_SEALED_HANDLE: claims.sealed_handle,
    }
    if claims.not_before is not None:
        entries[CLAIM_NBF] = claims.not_before
    if claims.status_index is not None:
        entries[CLAIM_STATUS_INDEX] = claims.status_index
    if claims.presentation is not None:
        entries[CLAIM_PRESENTATION] = claims.presentation
    for name in ("issued_at", "expires_at", "not_before", "status_index", "presentation"):
        value = getattr(claims, name)
        if value is not None and not 0 <= value < 1 << 64:
            raise ValueError(f"{name} must be an unsigned 64-bit integer")
    return _cbor.encode(entries)


def sign_token(claims: Claims, kid: bytes, private_key: ec.EllipticCurvePrivateKey) -> str:
    """Signs the claims with ES256 and returns the `SSC1:` token string.

    :raises TokenBudgetError: if the token would exceed `BUDGET_CHARS` characters.
    :raises ValueError: on claims outside the token format (lengths, ranges).
    """
    protected = protected_header(kid)
    payload = encode_claims(claims)
    signature = low_s_signature(private_key.sign(sig_structure(protected, payload), _ECDSA_SHA256))
    message = b"".join(
        (
            _TOKEN_START,
            _cbor.head(_cbor.BYTES, len(protected)),
            protected,
            bytes((_EMPTY_MAP,)),
            _cbor.head(_cbor.BYTES, len(payload)),
            payload,
            _SIGNATURE_HEAD,
            signature,
        )
    )
    token = PREFIX + b45encode(message)
    if len(token) > BUDGET_CHARS:
        raise TokenBudgetError(
            f"token of {len(token)} characters exceeds the budget of {BUDGET_CHARS}"
        )
    return token


def decode_token(token: str) -> DecodedToken:
    """Parses a token string without checking its signature or times.

    :raises MalformedTokenError: on anything but a well-formed `SSC1` token.
    """
    kid, protected, payload, signature, claims = split_token(token)
    return DecodedToken(kid, protected, payload, signature, Claims(*claims))


def split_token(token: str) -> tuple[bytes, bytes, bytes, bytes, ClaimValues]:
    """`decode_token` as plain tuples (kid, protected, payload, signature, claim values): the
    verifier's hot path, which skips building dataclasses it does not return.

    :raises MalformedTokenError: on anything but a well-formed `SSC1` token.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise MalformedTokenError("not a string of at most 512 characters")
    if not token.startswith(PREFIX):
        raise MalformedTokenError("missing the SSC1: prefix")
    try:
        return _split_message(b45decode(token[len(PREFIX) :]))
    except (Base45Error, _cbor.CborError) as error:
        raise MalformedTokenError(str(error)) from None


MAX_MESSAGE_BYTES = 320
"""The longest binary COSE_Sign1 `split_message` reads: what `MAX_TOKEN_CHARS` of base45 hold."""


def split_message(data: bytes) -> tuple[bytes, bytes, bytes, bytes, ClaimValues]:
    """`split_token` for the binary COSE_Sign1 itself (gateways that forward the scanned bytes),
    with the same strict layout checks.

    :raises MalformedTokenError: on anything but a well-formed `SSC1` COSE_Sign1.
    """
    if not isinstance(data, bytes) or len(data) > MAX_MESSAGE_BYTES:
        raise MalformedTokenError(f"not bytes of at most {MAX_MESSAGE_BYTES}")
    try:
        return _split_message(data)
    except (IndexError, _cbor.CborError) as error:
        raise MalformedTokenError(str(error) or "truncated message") from None


def _split_message(data: bytes) -> tuple[bytes, bytes, bytes, bytes, ClaimValues]:
    # Fixed layout, checked byte by byte: tag 18, array of 4, the 13-byte protected header
    # {1: -7, 4: h'kid'}, an empty unprotected map, the payload (shorter than 256 bytes, as
    # MAX_TOKEN_CHARS implies), and a 64-byte signature ending the input.
    if data[:_OUTER_PREFIX_LENGTH] != _OUTER_PREFIX or len(data) < _MINIMUM_MESSAGE:
        raise _cbor.CborError("not a COSE_Sign1 with protected header {alg: ES256, kid: 8 bytes}")
    if data[_UNPROTECTED_AT] != _EMPTY_MAP:
        raise _cbor.CborError("unprotected header must be an empty map")
    payload_head = data[_PAYLOAD_AT]
    if 0x40 <= payload_head < 0x58:
        start, length = _PAYLOAD_AT + 1, payload_head - 0x40
    elif payload_head == 0x58 and data[_PAYLOAD_AT + 1] >= 24:
        start, length = _PAYLOAD_AT + 2, data[_PAYLOAD_AT + 1]
    else:
        raise _cbor.CborError("payload must be a byte string shorter than 256 bytes")
    end = start + length
    if data[end : end + 2] != _SIGNATURE_HEAD or end + 2 + SIGNATURE_LENGTH != len(data):
        raise _cbor.CborError("a 64-byte signature must end the message")
    payload = data[start:end]
    return (
        data[_KID_AT:_UNPROTECTED_AT],
        data[_PROTECTED_AT:_UNPROTECTED_AT],
        payload,
        data[end + 2 :],
        _parse_claims(payload),
    )


def _parse_claims(payload: bytes) -> ClaimValues:
    # Hot path: claim keys are read inline (one byte for 0..23, 0x39 + 2 bytes for ours);
    # any other key form cannot be a known claim.
    major, count, position = _cbor.read_head(payload, 0)
    if major != _cbor.MAP or count > 8:
        raise _cbor.CborError("claims must be a map of at most eight entries")
    size = len(payload)
    issuer: str | None = None
    issued_at: int | None = None
    expires_at: int | None = None
    not_before: int | None = None
    status_index: int | None = None
    presentation: int | None = None
    cti: bytes | None = None
    sealed_handle: bytes | None = None
    for _ in range(count):
        if position >= size:
            raise _cbor.CborError("truncated")
        first = payload[position]
        if first < 24:
            key = first
            position += 1
        elif first == 0x39 and position + 3 <= size:
            key = -1 - int.from_bytes(payload[position + 1 : position + 3], "big")
            position += 3
        else:
            raise _cbor.CborError("unknown claim")
        if position >= size:
            raise _cbor.CborError("truncated")
        first = payload[position]
        if first & 0x1F < 24:
            major, value = first >> 5, first & 0x1F
            position += 1
        else:
            major, value, position = _cbor.read_head(payload, position)
        if major == _cbor.UINT:
            if key == CLAIM_IAT and issued_at is None:
                issued_at = value
            elif key == CLAIM_EXP and expires_at is None:
                expires_at = value
            elif key == CLAIM_NBF and not_before is None:
                not_before = value
            elif key == CLAIM_STATUS_INDEX and status_index is None:
                status_index = value
            elif key == CLAIM_PRESENTATION and presentation is None:
                presentation = value
            else:
                raise _cbor.CborError(f"unexpected, duplicate or mistyped claim {key}")
            continue
        end = position + value
        if end > size:
            raise _cbor.CborError("truncated")
        if major == _cbor.BYTES:
            if key == CLAIM_CTI and cti is None:
                cti = payload[position:end]
            elif key == CLAIM_SEALED_HANDLE and sealed_handle is None:
                sealed_handle = payload[position:end]
            else:
                raise _cbor.CborError(f"unexpected, duplicate or mistyped claim {key}")
        elif major == _cbor.TEXT and key == CLAIM_ISS and issuer is None:
            if not 0 < value <= MAX_ISSUER_BYTES:
                raise _cbor.CborError("issuer code of unexpected length")
            try:
                issuer = payload[position:end].decode("utf-8")
            except UnicodeDecodeError:
                raise _cbor.CborError("issuer is not UTF-8") from None
        else:
            raise _cbor.CborError(f"unexpected, duplicate or mistyped claim {key}")
        position = end
    if position != size:
        raise _cbor.CborError("trailing bytes after the claims")
    if issuer is None or issued_at is None or expires_at is None:
        raise _cbor.CborError("iss, iat and exp are required")
    if cti is None or len(cti) != CTI_LENGTH:
        raise _cbor.CborError("cti must be 8 bytes")
    if sealed_handle is None or len(sealed_handle) != HANDLE_LENGTH:
        raise _cbor.CborError("the sealed card handle must be 16 bytes")
    return issuer, issued_at, expires_at, cti, sealed_handle, not_before, status_index, presentation
