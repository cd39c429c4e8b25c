"""Verifying tokens on a scanner without a network, from a signed verifier bundle.

Checks, in order, stopping at the first failure: structure, key, issuer trust, signature,
times (all as `TokenVerifier`), the scene, the card's status in the issuer's status list,
and a local replay cache. The result also reports the bundle's age.

Decisions:

- A stale bundle (older than its `max_age`, or holding an expired status list of the
  token's issuer) never admits anyone: the verdict is still computed and reported, but
  `accepted` is False and `stale` True, so the operator sees *why* a scan was not accepted
  ("valid, but my data are too old: sync me") rather than a verdict that blames the card.
  Admission must be decided by `accepted`, never by `verdict` alone.
- A token without a status index, from an issuer that publishes a status list, is refused
  (`malformed`, reason `status_index_missing`): it could belong to a card reported lost,
  and no QR code of a lost card may pass offline. Issuers without a status list in the
  bundle are checked without status (`status` None).
- A status index outside the issuer's list is refused (`malformed`, reason
  `status_index_out_of_range`), as the draft requires; issuers should size lists by
  capacity, not by the number of cards, so a new card is never outside a current list.
- An unknown kid whose token names (in its still unverified `iss`) an issuer not in the
  bundle is reported `issuer_untrusted` rather than `unknown_key`: it only chooses between
  two refusals, and tells the operator the card comes from a region this scanner does not
  accept.
- The replay cache records a token only when it is accepted, so a scan refused for a stale
  bundle can be repeated after a sync; a token seen before is `replayed` even then.
- Offline disclosure is nothing beyond the verdict: neither the QR token nor the bundle
  carries personal data (the token seals only a card handle, the bundle holds keys, issuers,
  scenes and status lists), so an offline answer names the verdict and the scene scanned for,
  never a name, document number, age band, pseudonym or entitlement, whatever the scene's
  catalog entry allows online. A venue that needs those scans online.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from token_service.bundle import MAX_BUNDLE_BYTES, BundleError, VerifierBundle, load_bundle
from token_service.codec import decode_token
from token_service.errors import MalformedTokenError, TokenServiceError
from token_service.key_set import PublicKeySet
from token_service.keys import Clock
from token_service.status_list import Status
from token_service.trust_list import TrustedKeys
from token_service.verdicts import Verdict
from token_service.verify import TokenCheck, TokenVerifier

_REPLAY_FORMAT = "ssc-replay-cache/1"
DEFAULT_MAX_ENTRIES = 100_000

_STATUS_VERDICTS = {
    Status.VALID: Verdict.VALID,
    Status.INVALID: Verdict.CARD_CANCELLED,
    Status.SUSPENDED: Verdict.CARD_SUSPENDED,
    Status.LOST: Verdict.CARD_LOST,
}


class ReplayCacheError(TokenServiceError):
    """A persisted replay cache cannot be read or written."""

    code = "replay_cache"


class ReplayCache:
    """Tokens (issuer, cti) already accepted, each kept until its expiry, optionally on disk.

    With a `path`, the cache is loaded from that JSON file and rewritten atomically after each
    new entry, so a restarted scanner still refuses a token it accepted before. When full,
    the entries closest to expiry are dropped first.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Clock = time.time,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        """:raises ReplayCacheError: if the file exists but is not a readable replay cache."""
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self._path = path
        self._clock = clock
        self._max_entries = max_entries
        self._until: dict[bytes, float] = {}
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self._until = _read_cache(path)
            self._prune(clock())

    def seen(self, issuer: str, cti: bytes) -> bool:
        """Whether this token was recorded and has not yet expired."""
        with self._lock:
            until = self._until.get(_entry(issuer, cti))
            return until is not None and until >= self._clock()

    def record(self, issuer: str, cti: bytes, until: float) -> None:
        """Remembers a token until `until` (unix seconds); persists if the cache has a file.

        :raises ReplayCacheError: if the file cannot be written.
        """
        with self._lock:
            self._prune(self._clock())
            self._until[_entry(issuer, cti)] = until
            if len(self._until) > self._max_entries:
                for key, _ in heapq.nsmallest(
                    len(self._until) - self._max_entries, self._until.items(), key=lambda i: i[1]
                ):
                    del self._until[key]
            if self._path is not None:
                _write_cache(self._path, self._until)

    def __len__(self) -> int:
        return len(self._until)

    def _prune(self, now: float) -> None:
        expired = [key for key, until in self._until.items() if until < now]
        for key in expired:
            del self._until[key]


def _entry(issuer: str, cti: bytes) -> bytes:
    return issuer.encode("utf-8") + b"\x00" + cti


def _read_cache(path: Path) -> dict[bytes, float]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != _REPLAY_FORMAT:
            raise ReplayCacheError(f"{path}: not a replay cache")
        entries = document["entries"]
        return {
            base64.b64decode(key, validate=True): float(until) for key, until in entries.items()
        }
    except ReplayCacheError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise ReplayCacheError(f"{path}: unreadable replay cache ({error})") from None


def _write_cache(path: Path, entries: dict[bytes, float]) -> None:
    document = {
        "format": _REPLAY_FORMAT,
        "entries": {base64.b64encode(key).decode("ascii"): until for key, until in entries.items()},
    }
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ReplayCacheError(f"{path}: cannot write the replay cache ({error})") from None


@dataclass(frozen=True, slots=True)
class OfflineResult:
    """The outcome of one offline scan.

    `accepted` is the admission decision: the verdict is `valid` and nothing is stale.
    `status` is the card's entry in the status list when it was read. `reason` details a
    verdict that has several causes (e.g. `status_index_missing`).
    """

    verdict: Verdict
    accepted: bool
    stale: bool
    bundle_age_seconds: float
    issuer: str | None = None
    kid: bytes | None = None
    cti: bytes | None = None
    not_before: int | None = None
    expires_at: int | None = None
    status_index: int | None = None
    status: Status | None = None
    reason: str | None = None
    scene: str | None = None
    """The scene scanned for; offline, the answer discloses nothing of the holder."""


class OfflineVerifier:
    """Verifies tokens against one verifier bundle; no network, no clock but the given one."""

    def __init__(
        self,
        bundle_bytes: bytes,
        anchor_keys: PublicKeySet,
        *,
        clock: Clock = time.time,
        clock_skew: float = 5,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        """:param anchor_keys: the deployment's published keys, which sign bundles.
        :param replay_cache: defaults to a fresh in-memory cache (forgotten on restart).
        :raises BundleError: if the bundle is not signed by the anchor or is inconsistent.
        """
        if clock_skew < 0:
            raise ValueError("clock_skew must not be negative")
        self._bundle = load_bundle(bundle_bytes, anchor_keys, now=clock(), clock_skew=clock_skew)
        self._clock = clock
        self._skew = float(clock_skew)
        self._replay = replay_cache if replay_cache is not None else ReplayCache(clock=clock)
        self._codes = frozenset(entry.code for entry in self._bundle.issuers)
        self._tokens = TokenVerifier(
            TrustedKeys(self._bundle.issuers), self._codes, {}, clock_skew, clock
        )

    @classmethod
    def from_file(
        cls,
        path: Path,
        anchor_keys: PublicKeySet,
        *,
        clock: Clock = time.time,
        clock_skew: float = 5,
        replay_cache: ReplayCache | None = None,
    ) -> OfflineVerifier:
        """Loads the bundle stored at `path`.

        :raises BundleError: if the file cannot be read, is too large or is not a valid bundle.
        """
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BUNDLE_BYTES + 1)
        except OSError as error:
            raise BundleError(f"{path}: cannot read the bundle ({error})") from None
        return cls(data, anchor_keys, clock=clock, clock_skew=clock_skew, replay_cache=replay_cache)

    @property
    def bundle(self) -> VerifierBundle:
        """The verified bundle (client id, scenes, issuers, digest, ...)."""
        return self._bundle

    def verify(self, token: str, scene: str | None = None) -> OfflineResult:
        """Checks a scanned token string. Never raises on hostile input.

        :param scene: the scene scanned for; None skips the scene check.
        :raises ReplayCacheError: only if a persistent replay cache cannot be written.
        """
        return replace(self._verify(token, scene), scene=scene)

    def _verify(self, token: str, scene: str | None) -> OfflineResult:
        now = self._clock()
        bundle = self._bundle
        age = bundle.age(now)
        stale = bundle.is_stale(now)
        check = self._tokens.verify(token)
        if check.verdict is not Verdict.VALID:
            verdict = check.verdict
            if verdict is Verdict.UNKNOWN_KEY and _claimed_issuer(token) not in self._codes:
                verdict = Verdict.ISSUER_UNTRUSTED
            return _result(verdict, stale, age, check)
        issuer = check.issuer
        if issuer is None or check.cti is None or check.expires_at is None:
            return _result(Verdict.MALFORMED, stale, age, check)
        if scene is not None and scene not in bundle.scenes:
            return _result(Verdict.SCENE_NOT_ALLOWED, stale, age, check)
        status: Status | None = None
        listed = bundle.status_lists.get(issuer)
        if listed is not None:
            if listed.expires_at is not None and listed.expires_at + self._skew < now:
                stale = True
            index = check.status_index
            if index is None:
                return _result(Verdict.MALFORMED, stale, age, check, reason="status_index_missing")
            if index >= listed.status_list.size:
                return _result(
                    Verdict.MALFORMED, stale, age, check, reason="status_index_out_of_range"
                )
            value = listed.status_list.get(index)
            if value not in _STATUS_VALUES:
                return _result(Verdict.CARD_CANCELLED, stale, age, check, reason="unknown_status")
            status = Status(value)
            if status is not Status.VALID:
                return _result(_STATUS_VERDICTS[status], stale, age, check, status=status)
        if self._replay.seen(issuer, check.cti):
            return _result(Verdict.REPLAYED, stale, age, check, status=status)
        if not stale:
            self._replay.record(issuer, check.cti, check.expires_at + self._skew)
        return _result(Verdict.VALID, stale, age, check, status=status)


_STATUS_VALUES = frozenset(int(status) for status in Status)


def _claimed_issuer(token: str) -> str | None:
    try:
        return decode_token(token).claims.issuer
    except MalformedTokenError:
        return None


def _result(
    verdict: Verdict,
    stale: bool,
    age: float,
    check: TokenCheck,
    *,
    status: Status | None = None,
    reason: str | None = None,
) -> OfflineResult:
    return OfflineResult(
        verdict=verdict,
        accepted=verdict is Verdict.VALID and not stale,
        stale=stale,
        bundle_age_seconds=age,
        issuer=check.issuer,
        kid=check.kid,
        cti=check.cti,
        not_before=check.not_before,
        expires_at=check.expires_at,
        status_index=check.status_index,
        status=status,
        reason=reason,
    )
