"""The offline verifier bundle: everything a scanner needs to verify without a network.

One COSE_Sign1 CWT (typ `application/ssc-verifier-bundle+cwt`), signed by the deployment's
key ring, whose published keys are the scanner's trust anchor. Claims:

- 2 sub: the scanner's client id; 6 iat;
- "max_age": seconds after `iat` beyond which the bundle is stale;
- "scenes": the scenes the scanner may verify for;
- "issuers": the trust entries (as in the trust list: code, name, COSE keys, lifetime,
  status list URL);
- "status_lists": issuer code -> that issuer's signed status list CWT, embedded as bytes and
  verified against that issuer's keys (from the entries above) on load;
- "digest": SHA-256 over the deterministic CBOR of every claim but `iat` and itself: the
  same content gives the same digest, so the server can answer `If-None-Match` with 304.

Any input that is not such a bundle raises `BundleError`, and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from token_service import _cose
from token_service._cose import Cbor, DocumentError, KeyLookup, claim
from token_service.keys import KeyRing, b64url
from token_service.status_list import StatusListError, StatusListToken, verify_status_list_cwt
from token_service.trust_list import (
    TrustedIssuer,
    TrustListError,
    check_issuers,
    issuers_from_cbor,
    issuers_to_cbor,
)

BUNDLE_TYPE = "application/ssc-verifier-bundle+cwt"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
"""A bundle embeds whole status lists (about 10 MB at 10 M cards: load/RESULTS.md)."""
MAX_SCENES = 1024
CLAIM_SUB, CLAIM_IAT = 2, 6


class BundleError(DocumentError):
    """The bytes are not a verifier bundle signed by the anchor, or it contradicts itself."""

    code = "bundle_invalid"


@dataclass(frozen=True, slots=True)
class VerifierBundle:
    """A verified bundle. Times are unix seconds."""

    client_id: str
    scenes: frozenset[str]
    issued_at: int
    max_age: int
    issuers: tuple[TrustedIssuer, ...]
    status_lists: Mapping[str, StatusListToken]
    """Issuer code -> its verified status list (possibly expired: see `OfflineVerifier`)."""
    digest: bytes
    kid: bytes
    """The deployment key that signed the bundle."""

    @property
    def etag(self) -> str:
        """A strong HTTP entity tag of the content."""
        return f'"{b64url(self.digest[:18])}"'

    def issuer(self, code: str) -> TrustedIssuer | None:
        """The trust entry of an issuer code, or None."""
        return next((entry for entry in self.issuers if entry.code == code), None)

    def age(self, now: float) -> float:
        """Seconds since the bundle was issued (0 if the clock is behind the issuer's)."""
        return max(0.0, now - self.issued_at)

    def is_stale(self, now: float) -> bool:
        """Whether the bundle is older than its `max_age`."""
        return self.age(now) > self.max_age


@dataclass(frozen=True, slots=True)
class SignedBundle:
    """A freshly built bundle: the bytes to serve and their entity tag."""

    data: bytes
    digest: bytes

    @property
    def etag(self) -> str:
        """As `VerifierBundle.etag`."""
        return f'"{b64url(self.digest[:18])}"'


def build_bundle(
    *,
    keyring: KeyRing,
    client_id: str,
    scenes: Collection[str],
    issuers: Sequence[TrustedIssuer],
    status_lists: Mapping[str, bytes],
    issued_at: int,
    max_age: int,
) -> SignedBundle:
    """Builds and signs the bundle of one scanner.

    :param keyring: the deployment's key ring (scanners hold its published keys).
    :param issuers: the trust entries; an entry with a `status_list_uri` needs a status list.
    :param status_lists: issuer code -> that issuer's signed status list CWT, checked here.
    :param max_age: seconds after `issued_at` beyond which scanners report the bundle stale.
    :raises BundleError: on inconsistent content (a missing, foreign, expired or wrongly
        signed status list, duplicate issuers, a non-positive max_age).
    """
    if max_age <= 0:
        raise BundleError("max_age must be positive")
    if len(scenes) > MAX_SCENES:
        raise BundleError(f"more than {MAX_SCENES} scenes")
    try:
        check_issuers(issuers)
    except TrustListError as error:
        raise BundleError(str(error), reason="inconsistent") from None
    _verified_lists(issuers, status_lists, now=issued_at, allow_expired=False)
    scene_list: list[Cbor] = [scene for scene in sorted(scenes)]
    embedded: dict[int | str, Cbor] = {code: raw for code, raw in status_lists.items()}
    content: dict[int | str, Cbor] = {
        CLAIM_SUB: client_id,
        "max_age": max_age,
        "scenes": scene_list,
        "issuers": issuers_to_cbor(issuers),
        "status_lists": embedded,
    }
    digest = _digest(content)
    claims = {**content, CLAIM_IAT: issued_at, "digest": digest}
    data = _cose.sign1(_cose.encode(claims), content_type=BUNDLE_TYPE, signing=keyring.signing_key)
    return SignedBundle(data, digest)


def load_bundle(
    data: bytes, anchor_keys: KeyLookup, *, now: float, clock_skew: float = 5
) -> VerifierBundle:
    """Checks a bundle against the deployment's keys and returns its verified content.

    A stale bundle and expired status lists load (the verifier reports their staleness).

    :param anchor_keys: the deployment's published keys (`PublicKeySet`).
    :raises BundleError: with `reason` malformed, wrong_type, unknown_key, bad_signature,
        not_yet_valid or inconsistent; never any other exception.
    """
    kid, claims = _cose.open_sign1(
        data, anchor_keys, content_type=BUNDLE_TYPE, max_size=MAX_BUNDLE_BYTES, error=BundleError
    )
    issued_at: int = claim(claims, CLAIM_IAT, int, BundleError)
    _cose.check_times(
        issued_at, None, now=now, skew=clock_skew, allow_expired=True, error=BundleError
    )
    max_age: int = claim(claims, "max_age", int, BundleError)
    scenes = claim(claims, "scenes", list, BundleError)
    lists = claim(claims, "status_lists", dict, BundleError)
    if max_age <= 0 or len(scenes) > MAX_SCENES:
        raise BundleError("max_age must be positive and scenes at most 1024")
    if not all(isinstance(scene, str) for scene in scenes):
        raise BundleError("scenes are text")
    if not all(isinstance(code, str) and isinstance(raw, bytes) for code, raw in lists.items()):
        raise BundleError("status_lists maps issuer codes to signed lists")
    content = {key: value for key, value in claims.items() if key not in (CLAIM_IAT, "digest")}
    digest = _digest(content)
    if claims.get("digest") != digest:
        raise BundleError("digest does not match the content", reason="inconsistent")
    issuers = issuers_from_cbor(claims.get("issuers"), BundleError)
    verified = _verified_lists(issuers, lists, now=now, allow_expired=True)
    return VerifierBundle(
        client_id=claim(claims, CLAIM_SUB, str, BundleError),
        scenes=frozenset(scenes),
        issued_at=issued_at,
        max_age=max_age,
        issuers=issuers,
        status_lists=MappingProxyType(verified),
        digest=digest,
        kid=kid,
    )


def _verified_lists(
    issuers: Sequence[TrustedIssuer],
    status_lists: Mapping[str, bytes],
    *,
    now: float,
    allow_expired: bool,
) -> dict[str, StatusListToken]:
    by_code = {entry.code: entry for entry in issuers}
    foreign = set(status_lists) - set(by_code)
    if foreign:
        raise BundleError(
            f"status lists of unlisted issuers {sorted(foreign)}", reason="inconsistent"
        )
    verified = {}
    for entry in issuers:
        raw = status_lists.get(entry.code)
        if raw is None:
            if entry.status_list_uri is not None:
                raise BundleError(f"no status list for issuer {entry.code}", reason="inconsistent")
            continue
        try:
            verified[entry.code] = verify_status_list_cwt(
                raw, entry.keys, now=now, uri=entry.status_list_uri, allow_expired=allow_expired
            )
        except StatusListError as error:
            raise BundleError(
                f"status list of issuer {entry.code}: {error} ({error.reason})",
                reason="inconsistent",
            ) from None
    return verified


def _digest(content: Mapping[int | str, Cbor]) -> bytes:
    return hashlib.sha256(_cose.encode(dict(content))).digest()
