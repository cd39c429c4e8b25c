"""Signing keys of one issuer: generation, encrypted storage, rotation and publication.

A key moves `next -> active -> retired`. The next key is published (JWKS, COSE key set)
one rotation before it signs, so verifiers that sync periodically already know it; a
retired key keeps verifying for `retire_grace` seconds (token lifetime plus the offline
window) and is then pruned.

In an emergency (a leaked key) `revoke` moves a key of any state to `revoked` at once: it
leaves the published sets and `find` no longer returns it, and `is_revoked` says so (the
`revoked_key` verdict). Revoking the active key activates a freshly generated key at once,
without the publish-ahead wait (verifiers fetch it; phones fetch new tokens). Revoked keys
are kept (never pruned), so their tokens keep answering `revoked_key`.

Storage: one JSON file per key in a key directory, written atomically (temp file +
`os.replace`, mode 0600). The private key is stored as its 32-byte P-256 scalar encrypted
with AES-256-GCM under the key-encryption key (KEK), with the kid as associated data, so a
ciphertext moved into another key's file does not decrypt. Mutations take an exclusive
`flock` on the directory and re-read it first, so several processes can share one
directory (workers call `reload()` to pick up a rotation made elsewhere).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_service import _cbor
from token_service.errors import KeyRingError

Clock = Callable[[], float]

KEK_LENGTH = 32
KID_LENGTH = 8
DEFAULT_RETIRE_GRACE = 60.0 + 86_400.0
"""Token lifetime (60 s) plus a one-day offline window."""

_FORMAT = "ssc-keyring/1"
_KEY_ENCRYPTION = "A256GCM"
_KEY_FILE_SUFFIX = ".json"
_LOCK_FILE = ".lock"
_NONCE_LENGTH = 12
_SCALAR_LENGTH = 32
_COORDINATE_LENGTH = 32

# COSE (RFC 9053) labels for an EC2 key.
_COSE_KTY, _COSE_KID, _COSE_ALG = 1, 2, 3
_COSE_CRV, _COSE_X, _COSE_Y = -1, -2, -3
_COSE_KTY_EC2, _COSE_ALG_ES256, _COSE_CRV_P256 = 2, -7, 1


class KeyState(StrEnum):
    """Life-cycle state of a signing key."""

    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"
    """Withdrawn in an emergency: never published, never verifies, kept as a record."""


_STATE_ORDER = {KeyState.NEXT: 0, KeyState.ACTIVE: 1, KeyState.RETIRED: 2, KeyState.REVOKED: 3}


class RevocationReason(StrEnum):
    """Why a key was revoked (stored with it, shown by `ssc keys list`, audited)."""

    COMPROMISED = "compromised"
    """The private key is known or suspected to have leaked."""
    SUPERSEDED = "superseded"
    """Withdrawn early for another reason (e.g. a weak generator), no known leak."""


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The kid of a key: the first 8 bytes of SHA-256 over its DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:KID_LENGTH]


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2), the encoding of JWK members."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The key that signs new tokens."""

    kid: bytes
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A public key as verifiers see it, with its life-cycle timestamps (unix seconds)."""

    kid: bytes
    state: KeyState
    public_key: ec.EllipticCurvePublicKey
    created_at: float
    activated_at: float | None
    retired_at: float | None
    revoked_at: float | None = None
    revocation_reason: RevocationReason | None = None

    def coordinates(self) -> tuple[bytes, bytes]:
        """The affine x and y coordinates, 32 bytes each."""
        numbers = self.public_key.public_numbers()
        return (
            numbers.x.to_bytes(_COORDINATE_LENGTH, "big"),
            numbers.y.to_bytes(_COORDINATE_LENGTH, "big"),
        )

    def jwk(self) -> dict[str, str]:
        """RFC 7517 JWK of the public key, with a non-standard `status` member (the state)."""
        x, y = self.coordinates()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(x),
            "y": b64url(y),
            "kid": b64url(self.kid),
            "alg": "ES256",
            "use": "sig",
            "status": str(self.state),
        }

    def cose_key(self) -> dict[int, _cbor.CborValue]:
        """RFC 9053 COSE_Key map of the public key."""
        x, y = self.coordinates()
        return {
            _COSE_KTY: _COSE_KTY_EC2,
            _COSE_KID: self.kid,
            _COSE_ALG: _COSE_ALG_ES256,
            _COSE_CRV: _COSE_CRV_P256,
            _COSE_X: x,
            _COSE_Y: y,
        }


@dataclass(slots=True)
class _ManagedKey:
    kid: bytes
    private_key: ec.EllipticCurvePrivateKey
    public_key: ec.EllipticCurvePublicKey
    state: KeyState
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None
    revoked_at: float | None = None
    revocation_reason: RevocationReason | None = None

    @classmethod
    def generate(cls, state: KeyState, now: float) -> _ManagedKey:
        private_key = ec.generate_private_key(ec.SECP256R1())
        public_key = private_key.public_key()
        return cls(
            kid=key_id(public_key),
            private_key=private_key,
            public_key=public_key,
            state=state,
            created_at=now,
            activated_at=now if state is KeyState.ACTIVE else None,
        )

    def publish(self) -> PublishedKey:
        return PublishedKey(
            kid=self.kid,
            state=self.state,
            public_key=self.public_key,
            created_at=self.created_at,
            activated_at=self.activated_at,
            retired_at=self.retired_at,
            revoked_at=self.revoked_at,
            revocation_reason=self.revocation_reason,
        )


class _KeyDirectory:
    """Encrypted one-file-per-key storage of a key ring."""

    def __init__(self, directory: Path, kek: bytes) -> None:
        if len(kek) != KEK_LENGTH:
            raise KeyRingError(f"the key-encryption key must be {KEK_LENGTH} bytes")
        self.directory = directory
        self._aead = AESGCM(kek)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock across processes for a read-modify-write of the directory."""
        descriptor = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def path(self, kid: bytes) -> Path:
        return self.directory / f"{kid.hex()}{_KEY_FILE_SUFFIX}"

    def load(self) -> list[_ManagedKey]:
        return [self._read(path) for path in sorted(self.directory.glob(f"*{_KEY_FILE_SUFFIX}"))]

    def save(self, key: _ManagedKey) -> None:
        scalar = key.private_key.private_numbers().private_value.to_bytes(_SCALAR_LENGTH, "big")
        nonce = secrets.token_bytes(_NONCE_LENGTH)
        ciphertext = self._aead.encrypt(nonce, scalar, key.kid)
        document = {
            "format": _FORMAT,
            "kid": b64url(key.kid),
            "state": str(key.state),
            "created_at": key.created_at,
            "activated_at": key.activated_at,
            "retired_at": key.retired_at,
            "revoked_at": key.revoked_at,
            "revocation_reason": None
            if key.revocation_reason is None
            else str(key.revocation_reason),
            "public_key": base64.b64encode(
                key.public_key.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).decode("ascii"),
            "private_key": {
                "enc": _KEY_ENCRYPTION,
                "nonce": base64.b64encode(nonce).decode("ascii"),
                "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
            },
        }
        self._write_atomically(self.path(key.kid), json.dumps(document, indent=2) + "\n")

    def delete(self, kid: bytes) -> None:
        self.path(kid).unlink(missing_ok=True)

    def _write_atomically(self, target: Path, text: str) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _read(self, path: Path) -> _ManagedKey:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return self._parse(document)
        except KeyRingError as error:
            raise KeyRingError(f"{path}: {error}") from None
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as error:
            raise KeyRingError(f"{path}: unreadable key file ({error})") from error

    def _parse(self, document: dict[str, Any]) -> _ManagedKey:
        if document.get("format") != _FORMAT:
            raise KeyRingError("unknown key file format")
        public_key = serialization.load_der_public_key(base64.b64decode(document["public_key"]))
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise KeyRingError("not a P-256 public key")
        kid = key_id(public_key)
        if b64url(kid) != document["kid"]:
            raise KeyRingError("kid does not match the public key")
        sealed = document["private_key"]
        if sealed["enc"] != _KEY_ENCRYPTION:
            raise KeyRingError("unknown private key encryption")
        try:
            scalar = self._aead.decrypt(
                base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), kid
            )
        except InvalidTag:
            raise KeyRingError(
                "cannot decrypt the private key: wrong key-encryption key or tampered file"
            ) from None
        private_key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
        if private_key.public_key().public_numbers() != public_key.public_numbers():
            raise KeyRingError("private key does not match the public key")
        return _ManagedKey(
            kid=kid,
            private_key=private_key,
            public_key=public_key,
            state=KeyState(document["state"]),
            created_at=float(document["created_at"]),
            activated_at=_optional_time(document["activated_at"]),
            retired_at=_optional_time(document["retired_at"]),
            # Absent from files written before revocation existed.
            revoked_at=_optional_time(document.get("revoked_at")),
            revocation_reason=None
            if document.get("revocation_reason") is None
            else RevocationReason(document["revocation_reason"]),
        )


def _optional_time(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise KeyRingError("timestamps must be numbers")
    return float(value)


class KeyRing:
    """The ES256 keys of one issuer. Build with `load_or_create` or `ephemeral`."""

    def __init__(
        self,
        *,
        storage: _KeyDirectory | None,
        retire_grace: float,
        clock: Clock,
    ) -> None:
        if retire_grace < 0:
            raise ValueError("retire_grace must not be negative")
        self._storage = storage
        self._retire_grace = float(retire_grace)
        self._clock = clock
        self._keys: dict[bytes, _ManagedKey] = {}
        self._signing: SigningKey | None = None
        self._generation = 0
        self._listeners: list[weakref.WeakMethod[Callable[[], object]]] = []

    @classmethod
    def load_or_create(
        cls, directory: Path, kek: bytes, *, retire_grace: float, clock: Clock = time.time
    ) -> KeyRing:
        """Opens the key ring stored in `directory`, creating an active and a next key if empty.

        :param kek: the 32-byte key-encryption key of the private keys.
        :param retire_grace: seconds a retired key keeps verifying (token lifetime plus the
            offline window).
        :raises KeyRingError: on a wrong KEK, a tampered or unreadable file, or no active key.
        """
        ring = cls(storage=_KeyDirectory(directory, kek), retire_grace=retire_grace, clock=clock)
        with ring._mutation():
            pass
        return ring

    @classmethod
    def ephemeral(
        cls, *, retire_grace: float = DEFAULT_RETIRE_GRACE, clock: Clock = time.time
    ) -> KeyRing:
        """An in-memory key ring (tests, other issuers in simulations); nothing touches disk."""
        ring = cls(storage=None, retire_grace=retire_grace, clock=clock)
        with ring._mutation():
            pass
        return ring

    @property
    def retire_grace(self) -> float:
        """Seconds a retired key keeps verifying after its retirement."""
        return self._retire_grace

    @property
    def generation(self) -> int:
        """Increases whenever the set of keys or their states change."""
        return self._generation

    @property
    def signing_key(self) -> SigningKey:
        """The active key."""
        if self._signing is None:
            active = self._the(KeyState.ACTIVE)
            self._signing = SigningKey(kid=active.kid, private_key=active.private_key)
        return self._signing

    def find(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The public key with this kid, if it may verify now (next, active, retired in grace)."""
        key = self._keys.get(kid)
        if key is None or not self._verifies(key, self._clock()):
            return None
        return key.public_key

    def is_revoked(self, kid: bytes) -> bool:
        """Whether this kid is one of our keys revoked in an emergency."""
        key = self._keys.get(kid)
        return key is not None and key.state is KeyState.REVOKED

    def revoked(self) -> list[PublishedKey]:
        """The revoked keys (never published), most recently revoked first."""
        keys = [key for key in self._keys.values() if key.state is KeyState.REVOKED]
        keys.sort(key=lambda key: -(key.revoked_at or 0.0))
        return [key.publish() for key in keys]

    def published(self) -> list[PublishedKey]:
        """The keys verifiers should hold now: next, active, and retired keys within grace."""
        now = self._clock()
        visible = [key for key in self._keys.values() if self._verifies(key, now)]
        visible.sort(key=lambda key: (_STATE_ORDER[key.state], -key.created_at))
        return [key.publish() for key in visible]

    def rotate(self) -> SigningKey:
        """Promotes the next key to active, retires the active one and creates a new next key.

        :returns: the new signing key.
        :raises KeyRingError: if the stored key ring cannot be re-read.
        """
        with self._mutation() as save:
            now = self._clock()
            retiring = self._the(KeyState.ACTIVE)
            promoted = self._oldest(KeyState.NEXT)
            fresh = _ManagedKey.generate(KeyState.NEXT, now)
            self._keys[fresh.kid] = fresh
            promoted.state, promoted.activated_at = KeyState.ACTIVE, now
            retiring.state, retiring.retired_at = KeyState.RETIRED, now
            # This order leaves a recoverable state after a crash at any point (see _repair).
            save(fresh, promoted, retiring)
        return self.signing_key

    def revoke(self, kid: bytes, reason: RevocationReason) -> SigningKey:
        """Withdraws a key at once (emergency), whatever its state; idempotent.

        The key leaves the published sets and stops verifying. If it was the active key, a
        freshly generated key becomes active at once (no publish-ahead wait); if it was the
        next key, a fresh next key replaces it. Persisted before it returns.

        :returns: the signing key from now on.
        :raises KeyRingError: if no key has this kid, or the stored ring cannot be re-read.
        """
        with self._mutation() as save:
            now = self._clock()
            key = self._keys.get(kid)
            if key is None:
                raise KeyRingError(f"no key {b64url(kid)} in the key ring")
            if key.state is not KeyState.REVOKED:
                was_active = key.state is KeyState.ACTIVE
                key.state, key.revoked_at, key.revocation_reason = KeyState.REVOKED, now, reason
                # Saved first: a crash before the fresh key is saved leaves no active key, which
                # _repair answers with a fresh active key, never by reviving the revoked one.
                save(key)
                if was_active:
                    fresh = _ManagedKey.generate(KeyState.ACTIVE, now)
                    self._keys[fresh.kid] = fresh
                    save(fresh)
                self._repair(save)
        return self.signing_key

    def prune(self) -> list[bytes]:
        """Forgets retired keys whose grace has passed, in memory and on disk (never revoked
        keys: they are the record that their tokens answer `revoked_key`).

        :returns: the kids removed.
        """
        with self._mutation():
            now = self._clock()
            expired = [
                key.kid
                for key in self._keys.values()
                if key.state is KeyState.RETIRED and not self._verifies(key, now)
            ]
            for kid in expired:
                del self._keys[kid]
                if self._storage is not None:
                    self._storage.delete(kid)
        return expired

    def reload(self) -> None:
        """Re-reads the key directory, to pick up a rotation made by another process."""
        with self._mutation():
            pass

    def subscribe(self, callback: Callable[[], object]) -> None:
        """Calls the bound method `callback` after every change; it is held weakly."""
        self._listeners.append(weakref.WeakMethod(callback))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The published keys as an RFC 7517 JWK set."""
        return {"keys": [key.jwk() for key in self.published()]}

    def cose_key_set(self) -> bytes:
        """The published keys as a CBOR array of COSE_Key maps (RFC 9052 section 7)."""
        return _cbor.encode([key.cose_key() for key in self.published()])

    def _verifies(self, key: _ManagedKey, now: float) -> bool:
        if key.state is KeyState.REVOKED:
            return False
        if key.state is not KeyState.RETIRED:
            return True
        return key.retired_at is not None and now - key.retired_at <= self._retire_grace

    def _the(self, state: KeyState) -> _ManagedKey:
        matching = [key for key in self._keys.values() if key.state is state]
        if len(matching) != 1:
            raise KeyRingError(f"expected exactly one {state} key, found {len(matching)}")
        return matching[0]

    def _oldest(self, state: KeyState) -> _ManagedKey:
        return min(
            (key for key in self._keys.values() if key.state is state),
            key=lambda key: key.created_at,
        )

    @contextmanager
    def _mutation(self) -> Iterator[Callable[..., None]]:
        """Runs a change on fresh state under the directory lock, then persists and notifies."""
        storage = self._storage

        def save(*keys: _ManagedKey) -> None:
            if storage is not None:
                for key in keys:
                    storage.save(key)

        if storage is None:
            self._repair(save)
            yield save
        else:
            with storage.lock():
                self._keys = {key.kid: key for key in storage.load()}
                self._repair(save)
                yield save
        self._signing = None
        self._generation += 1
        self._notify()

    def _repair(self, save: Callable[..., None]) -> None:
        """Brings the ring to one active and at least one next key.

        Creates both on an empty ring. A rotation interrupted after promoting the next key but
        before retiring the old one leaves two active keys: the most recently activated wins.
        A revocation of the active key interrupted before its fresh successor was saved leaves
        no active key but a revoked one: a fresh key becomes active.
        """
        now = self._clock()
        if not self._keys or (
            not any(key.state is KeyState.ACTIVE for key in self._keys.values())
            and any(key.state is KeyState.REVOKED for key in self._keys.values())
        ):
            first = _ManagedKey.generate(KeyState.ACTIVE, now)
            self._keys[first.kid] = first
            save(first)
        actives = sorted(
            (key for key in self._keys.values() if key.state is KeyState.ACTIVE),
            key=lambda key: key.activated_at or key.created_at,
        )
        if not actives:
            raise KeyRingError("the key ring has keys but no active key")
        newest = actives[-1]
        for stale in actives[:-1]:
            stale.state = KeyState.RETIRED
            stale.retired_at = newest.activated_at or now
            save(stale)
        if not any(key.state is KeyState.NEXT for key in self._keys.values()):
            upcoming = _ManagedKey.generate(KeyState.NEXT, now)
            self._keys[upcoming.kid] = upcoming
            save(upcoming)

    def _notify(self) -> None:
        alive = []
        for reference in self._listeners:
            callback = reference()
            if callback is not None:
                alive.append(reference)
                callback()
        self._listeners = alive
