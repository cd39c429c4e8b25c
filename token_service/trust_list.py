"""The signed list of issuers a verifier accepts (cross-region trust).

The trust-list operator (the deployment's administrator) signs, with its own key ring, a
list of issuers: region code, name, published keys, status list URL, token lifetime; plus
`iat`, `exp` and a sequence number that only grows, so a verifier can refuse an older list
replayed to it (`min_sequence`). Two signed forms carry the same content:

- CWT: COSE_Sign1 with typ `application/trustlist+cwt`; claims 6 iat, 4 exp and the text
  keys "seq" and "issuers" (each issuer a map with "code", "name", "keys" as COSE_Key maps,
  "lifetime" and optionally "status_list");
- JWT: ES256 with typ `trustlist+jwt`; claims iat, exp, seq, issuers (keys as JWKs).

`TrustList.resolver()` turns a verified list into a `KeyResolver` for `TokenVerifier`.
A token of an issuer that is not on the list then verifies as `unknown_key`, not
`issuer_untrusted`: the verifier does not hold that issuer's keys, and the token's `iss`
cannot be believed before its signature is checked with one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from token_service import _cose
from token_service._cose import Cbor, DocumentError, KeyLookup, claim
from token_service.codec import MAX_ISSUER_BYTES
from token_service.key_set import KeySetError, PublicKeySet, public_key_from_cose
from token_service.keys import KeyRing
from token_service.verify import VerificationKey

CWT_TYPE = "application/trustlist+cwt"
JWT_TYPE = "trustlist+jwt"
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_ISSUERS = 1024
MAX_NAME_CHARS = 256
MAX_URI_CHARS = 2048


class TrustListError(DocumentError):
    """A trust list (or the trust entries of a bundle) is malformed, wrongly signed or old."""

    code = "trust_list_invalid"


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One accepted issuer: its code (the tokens' `iss`), keys and status list."""

    code: str
    name: str
    keys: PublicKeySet
    token_lifetime: int
    """Seconds from a token's start of validity to its `exp`, as the issuer announces it."""
    status_list_uri: str | None = None

    @classmethod
    def from_keyring(
        cls,
        code: str,
        name: str,
        ring: KeyRing,
        *,
        token_lifetime: int,
        status_list_uri: str | None = None,
    ) -> TrustedIssuer:
        """The entry of an issuer whose key ring we hold (our own, or one in a test)."""
        return cls(code, name, PublicKeySet.from_keyring(ring), token_lifetime, status_list_uri)


@dataclass(frozen=True, slots=True)
class TrustList:
    """A verified trust list (or the content of one before signing)."""

    sequence: int
    issued_at: int
    expires_at: int
    issuers: tuple[TrustedIssuer, ...]

    def __post_init__(self) -> None:
        check_issuers(self.issuers)

    def issuer(self, code: str) -> TrustedIssuer | None:
        """The entry of an issuer code, or None."""
        return next((entry for entry in self.issuers if entry.code == code), None)

    @property
    def codes(self) -> frozenset[str]:
        """The issuer codes on the list: the `trusted_issuers` of a `TokenVerifier`."""
        return frozenset(entry.code for entry in self.issuers)

    def resolver(self) -> TrustedKeys:
        """A `KeyResolver` over the keys of every listed issuer."""
        return TrustedKeys(self.issuers)


class TrustedKeys:
    """A `KeyResolver` over trusted issuers' keys: one dict lookup per token."""

    __slots__ = ("_table",)

    def __init__(self, issuers: Iterable[TrustedIssuer]) -> None:
        """:raises ValueError: if two issuers share a kid."""
        table: dict[bytes, VerificationKey] = {}
        for entry in issuers:
            for kid, public_key in entry.keys.items():
                if kid in table:
                    raise ValueError(f"kid shared by issuers {table[kid].issuer} and {entry.code}")
                table[kid] = VerificationKey(entry.code, kid, public_key)
        self._table = table

    def resolve(self, kid: bytes) -> VerificationKey | None:
        """The key with this kid and the issuer it signs for, or None."""
        return self._table.get(kid)

    def is_revoked(self, kid: bytes) -> bool:
        """Always False: a trust list carries the keys an issuer publishes, and a revoked key
        is simply absent from them (its tokens answer `unknown_key`)."""
        return False


def check_issuers(issuers: Sequence[TrustedIssuer]) -> None:
    """Refuses duplicate codes, shared kids, and fields outside their ranges.

    :raises TrustListError: naming the problem.
    """
    if len(issuers) > MAX_ISSUERS:
        raise TrustListError(f"more than {MAX_ISSUERS} issuers")
    codes = [entry.code for entry in issuers]
    if len(set(codes)) != len(codes):
        raise TrustListError("an issuer code appears twice")
    for entry in issuers:
        if not 0 < len(entry.code.encode("utf-8")) <= MAX_ISSUER_BYTES:
            raise TrustListError(f"issuer code of 1 to {MAX_ISSUER_BYTES} bytes: {entry.code!r}")
        if len(entry.name) > MAX_NAME_CHARS:
            raise TrustListError("issuer name too long")
        if entry.token_lifetime <= 0:
            raise TrustListError("a token lifetime is positive")
        if entry.status_list_uri is not None and len(entry.status_list_uri) > MAX_URI_CHARS:
            raise TrustListError("status list URI too long")
    try:
        TrustedKeys(issuers)
    except ValueError as error:
        raise TrustListError(str(error)) from None


def issuers_to_cbor(issuers: Iterable[TrustedIssuer]) -> list[Cbor]:
    """The CBOR form of trust entries (shared by the trust list CWT and verifier bundles)."""
    entries: list[Cbor] = []
    for entry in issuers:
        item: dict[int | str, Cbor] = {
            "code": entry.code,
            "name": entry.name,
            "keys": entry.keys.cose_keys(),
            "lifetime": entry.token_lifetime,
        }
        if entry.status_list_uri is not None:
            item["status_list"] = entry.status_list_uri
        entries.append(item)
    return entries


def issuers_from_cbor(
    value: object, error: type[DocumentError] = TrustListError
) -> tuple[TrustedIssuer, ...]:
    """Reads trust entries from their CBOR form.

    :raises error: on a malformed entry, a duplicate code or a kid shared by two issuers.
    """
    if not isinstance(value, list) or len(value) > MAX_ISSUERS:
        raise error("issuers must be a list")
    issuers = []
    for item in value:
        if not isinstance(item, dict):
            raise error("an issuer entry is a map")
        keys = claim(item, "keys", list, error)
        try:
            key_set = PublicKeySet(public_key_from_cose(key) for key in keys)
        except KeySetError as failure:
            raise error(f"issuer keys: {failure}") from None
        issuers.append(_entry(item, key_set, error))
    return _checked_issuers(issuers, error)


def issuers_to_json(issuers: Iterable[TrustedIssuer]) -> list[dict[str, Any]]:
    """The JSON form of trust entries (keys as JWKs)."""
    entries: list[dict[str, Any]] = []
    for entry in issuers:
        item: dict[str, Any] = {
            "code": entry.code,
            "name": entry.name,
            "keys": entry.keys.jwks()["keys"],
            "lifetime": entry.token_lifetime,
        }
        if entry.status_list_uri is not None:
            item["status_list"] = entry.status_list_uri
        entries.append(item)
    return entries


def issuers_from_json(
    value: object, error: type[DocumentError] = TrustListError
) -> tuple[TrustedIssuer, ...]:
    """Reads trust entries from their JSON form.

    :raises error: as `issuers_from_cbor`.
    """
    if not isinstance(value, list) or len(value) > MAX_ISSUERS:
        raise error("issuers must be a list")
    issuers = []
    for item in value:
        if not isinstance(item, dict):
            raise error("an issuer entry is an object")
        try:
            key_set = PublicKeySet.from_jwks({"keys": claim(item, "keys", list, error)})
        except KeySetError as failure:
            raise error(f"issuer keys: {failure}") from None
        issuers.append(_entry(item, key_set, error))
    return _checked_issuers(issuers, error)


def _entry(
    item: Mapping[Any, Any], keys: PublicKeySet, error: type[DocumentError]
) -> TrustedIssuer:
    uri = item.get("status_list")
    if uri is not None and not isinstance(uri, str):
        raise error("status_list must be text")
    return TrustedIssuer(
        code=claim(item, "code", str, error),
        name=claim(item, "name", str, error),
        keys=keys,
        token_lifetime=claim(item, "lifetime", int, error),
        status_list_uri=uri,
    )


def _checked_issuers(
    issuers: list[TrustedIssuer], error: type[DocumentError]
) -> tuple[TrustedIssuer, ...]:
    try:
        check_issuers(issuers)
    except TrustListError as failure:
        raise error(str(failure)) from None
    return tuple(issuers)


def sign_trust_list_cwt(trust_list: TrustList, keyring: KeyRing) -> bytes:
    """The CWT form, signed with the operator's active key."""
    claims: dict[int | str, Cbor] = {
        6: trust_list.issued_at,
        4: trust_list.expires_at,
        "seq": trust_list.sequence,
        "issuers": issuers_to_cbor(trust_list.issuers),
    }
    return _cose.sign1(_cose.encode(claims), content_type=CWT_TYPE, signing=keyring.signing_key)


def sign_trust_list_jwt(trust_list: TrustList, keyring: KeyRing) -> str:
    """The JWT form, signed with the operator's active key."""
    claims = {
        "iat": trust_list.issued_at,
        "exp": trust_list.expires_at,
        "seq": trust_list.sequence,
        "issuers": issuers_to_json(trust_list.issuers),
    }
    return _cose.sign_jws(claims, typ=JWT_TYPE, signing=keyring.signing_key)


def verify_trust_list_cwt(
    data: bytes,
    operator_keys: KeyLookup,
    *,
    now: float,
    clock_skew: float = 5,
    min_sequence: int | None = None,
) -> TrustList:
    """Checks a signed CWT trust list and returns its entries.

    :param operator_keys: the trust-list operator's published keys.
    :param min_sequence: refuse lists older than this (the last sequence seen).
    :raises TrustListError: with `reason` malformed, wrong_type, unknown_key, bad_signature,
        expired, not_yet_valid or rollback.
    """
    _, claims = _cose.open_sign1(
        data,
        operator_keys,
        content_type=CWT_TYPE,
        max_size=MAX_DOCUMENT_BYTES,
        error=TrustListError,
    )
    return _checked(
        sequence=claim(claims, "seq", int, TrustListError),
        issued_at=claim(claims, 6, int, TrustListError),
        expires_at=claim(claims, 4, int, TrustListError),
        issuers=issuers_from_cbor(claims.get("issuers")),
        now=now,
        clock_skew=clock_skew,
        min_sequence=min_sequence,
    )


def verify_trust_list_jwt(
    text: str,
    operator_keys: KeyLookup,
    *,
    now: float,
    clock_skew: float = 5,
    min_sequence: int | None = None,
) -> TrustList:
    """Checks a signed JWT trust list; parameters and errors as `verify_trust_list_cwt`."""
    _, claims = _cose.open_jws(
        text, operator_keys, typ=JWT_TYPE, max_size=MAX_DOCUMENT_BYTES, error=TrustListError
    )
    return _checked(
        sequence=claim(claims, "seq", int, TrustListError),
        issued_at=claim(claims, "iat", int, TrustListError),
        expires_at=claim(claims, "exp", int, TrustListError),
        issuers=issuers_from_json(claims.get("issuers")),
        now=now,
        clock_skew=clock_skew,
        min_sequence=min_sequence,
    )


def _checked(
    *,
    sequence: int,
    issued_at: int,
    expires_at: int,
    issuers: tuple[TrustedIssuer, ...],
    now: float,
    clock_skew: float,
    min_sequence: int | None,
) -> TrustList:
    _cose.check_times(
        issued_at, expires_at, now=now, skew=clock_skew, allow_expired=False, error=TrustListError
    )
    if min_sequence is not None and sequence < min_sequence:
        raise TrustListError(f"sequence {sequence} older than {min_sequence}", reason="rollback")
    return TrustList(sequence, issued_at, expires_at, issuers)
