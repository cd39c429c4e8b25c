"""Personal data at rest (PIPL): authenticated encryption, keyed blind indexes, display masks.

Names, document numbers and phone numbers are stored sealed (AES-256-GCM). Because a sealed
value is randomised, equality search goes through a blind index: an HMAC of the normalised value
under a second, independent key, so a leaked index column cannot be decrypted and a leaked
encryption key does not let anyone compute index values without the index key either.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.security.errors import PiiError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# Version 1: AES-256-GCM, 12-byte random nonce, AAD = version byte + field name.
SEALED_V1 = b"\x01"
_ENCRYPTION_INFO = b"ssc/pii/encryption/v1"
_INDEX_INFO = b"ssc/pii/blind-index/v1"
_INDEX_DOMAIN = b"ssc/pii/blind-index/v1\x00"
_VIEW_INFO = b"ssc/pii/card-view/v1"
_VIEW_AAD = b"ssc/card-view/v1\x00"


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


def normalise_for_index(value: str) -> str:
    """The form a value is indexed in: NFKC (full-width digits from IMEs become ASCII),
    trimmed, inner whitespace collapsed, upper-case (a lower-case `x` check digit or a Latin
    name typed in lower case must find the same row)."""
    return " ".join(unicodedata.normalize("NFKC", value).split()).upper()


class PiiCipher:
    """Seals and opens personal-data fields and computes their blind indexes.

    The field name is bound into both the ciphertext (associated data) and the index MAC, so a
    sealed name copied into the phone column fails to open and equal values in different
    columns have unrelated index values.
    """

    __slots__ = ("_aead", "_index_key", "_view_aead")

    def __init__(self, encryption_key: bytes, index_key: bytes) -> None:
        if len(encryption_key) != KEY_BYTES or len(index_key) != KEY_BYTES:
            raise ValueError(f"PII keys must be {KEY_BYTES} bytes each")
        if hmac.compare_digest(encryption_key, index_key):
            raise ValueError("the blind-index key must differ from the encryption key")
        self._aead = AESGCM(encryption_key)
        self._index_key = index_key
        # A key for one purpose only: the card attribute views cached in the store.
        self._view_aead = AESGCM(_derive(encryption_key, _VIEW_INFO))

    @classmethod
    def from_master_key(cls, master: bytes) -> PiiCipher:
        """Derives both keys from one secret (e.g. `SSC_DATA_KEY`) with HKDF-SHA256."""
        if len(master) < KEY_BYTES:
            raise ValueError(f"the PII master key must be at least {KEY_BYTES} bytes")
        return cls(_derive(master, _ENCRYPTION_INFO), _derive(master, _INDEX_INFO))

    def seal(self, field: str, plaintext: str) -> bytes:
        """Returns version byte + nonce + ciphertext-with-tag, bound to `field`."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, _utf8(plaintext), _aad(field))
        return SEALED_V1 + nonce + ciphertext

    def open(self, field: str, sealed: bytes) -> str:
        """Opens what `seal(field, ...)` produced; anything else raises `PiiError`."""
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES:
            raise PiiError("sealed value is truncated")
        if sealed[:1] != SEALED_V1:
            raise PiiError("sealed value has an unknown version")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, _aad(field))
        except InvalidTag:
            raise PiiError(f"sealed {field!r} value failed authentication") from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise PiiError(f"sealed {field!r} value is not text") from None

    def seal_view(self, subject: bytes, plaintext: bytes) -> bytes:
        """Seals a card's attribute view for the store, bound to `subject` (the card id): a
        view copied onto another card's entry fails to open. Nonce + ciphertext-with-tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._view_aead.encrypt(nonce, plaintext, _VIEW_AAD + subject)

    def open_view(self, subject: bytes, sealed: bytes) -> bytes:
        """Opens what `seal_view(subject, ...)` produced; anything else raises `PiiError`."""
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise PiiError("sealed view is truncated")
        try:
            return self._view_aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _VIEW_AAD + subject
            )
        except InvalidTag:
            raise PiiError("sealed view failed authentication") from None

    def blind_index(self, field: str, value: str) -> str:
        """Hex HMAC-SHA256 of the normalised value; equal inputs give equal indexes per field.

        Index document numbers in the form `validate_document` returns (no inner spaces): the
        normalisation here only collapses inner whitespace, it does not remove it.
        """
        encoded_field = _field_bytes(field)
        message = (
            _INDEX_DOMAIN
            + len(encoded_field).to_bytes(2, "big")
            + encoded_field
            + _utf8(normalise_for_index(value))
        )
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def _aad(field: str) -> bytes:
    return SEALED_V1 + _field_bytes(field)


def _field_bytes(field: str) -> bytes:
    if not field:
        raise ValueError("a PII field name is required")
    return _utf8(field)


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (legal in JSON escapes) is refused as bad input."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (lone surrogate)") from None


_CJK = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]",
)
# The interpunct of transliterated and minority names (买买提·艾力) and its look-alikes.
_CJK_SEPARATORS = frozenset("·•・.． ")
_LATIN_SEPARATORS = re.compile(r"([\s\-'.·]+)")


def mask_name(name: str) -> str:
    """A name as shown to people who may see that someone is there but not who.

    Chinese names keep the first and last character (张三 -> 张*, 张小三 -> 张*三,
    欧阳小明 -> 欧**明); other names keep the first letter of each word
    (JOHN SMITH -> J*** S****). Lengths are kept, as on Chinese receipts and screens.
    """
    name = name.strip()
    if not name:
        return ""
    if _CJK.search(name):
        return _mask_cjk(name)
    parts = _LATIN_SEPARATORS.split(name)
    return "".join(
        part if _LATIN_SEPARATORS.fullmatch(part) or not part else part[0] + "*" * (len(part) - 1)
        for part in parts
    )


def _mask_cjk(name: str) -> str:
    letters = [i for i, char in enumerate(name) if char not in _CJK_SEPARATORS]
    if len(letters) <= 1:
        return "".join("*" if char not in _CJK_SEPARATORS else char for char in name)
    keep = {letters[0]} if len(letters) == 2 else {letters[0], letters[-1]}
    return "".join(
        char if i in keep or char in _CJK_SEPARATORS else "*" for i, char in enumerate(name)
    )


def mask_document_number(number: str) -> str:
    """Keeps the first 3 and last 4 characters (110***********1234); shorter than 8, all masked."""
    number = number.strip()
    if len(number) < 8:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
