"""Scheduled key rotation.

The active key is replaced when it is older than `SSC_KEY_ROTATION_DAYS`, but only once the
next key has been published for `SSC_KEY_PUBLISH_AHEAD` seconds, so every verifier that
syncs at least that often already holds the key before its first token. Retired keys are
pruned once their grace (token lifetime + offline window) has passed.

Every worker runs the check; a store lock makes one of them rotate, and the key ring is
re-read under it (`KeyRing.rotate` works on fresh state under the directory lock), so two
workers never rotate twice in a row. Workers that did not rotate pick the change up at
their next `reload`, every `SSC_KEY_SYNC_INTERVAL` seconds: meanwhile they still sign with
the retired key, whose tokens verify everywhere during its grace, and verify the new
active key's tokens, which they knew as the published next key.

Emergency revocation (`ssc keys revoke KID --reason compromised`, `revoke_key`): the key ring
marks the key revoked on disk (so a restart keeps it), activates a fresh key at once if it was
the active one, and then announces the kid on the store's `KEY_CHANGES` channel; every worker
re-reads the ring on that message (`app.trust.background`), so within a second none publishes
the key (JWKS, COSE key set, trust list, verifier bundles) or accepts its tokens online
(`revoked_key`), and all sign with the fresh key. A worker that missed the message (store
unreachable) catches up at its next sync tick. Verifier bundles carry the revocation by the
key's absence: offline its tokens answer `unknown_key` once the scanner has the new bundle.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass

from app.audit.log import record
from app.config import Settings
from app.store import Store
from token_service import KeyRing, KeyState
from token_service.keys import KID_LENGTH, RevocationReason, b64url

logger = logging.getLogger("ssc.trust.keys")

ROTATION_LOCK = "keys:rotation-lock"
ROTATION_LOCK_SECONDS = 60
SYSTEM_ACTOR = "system:key-rotation"
KEY_CHANGES = "key-changes"
"""Pub/sub channel: a kid (raw bytes) whose state changed outside the schedule (revocation)."""


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    rotate_after: float
    """Seconds an active key signs before it is replaced; 0 turns scheduled rotation off."""
    publish_ahead: float
    """Seconds the next key must have been published before it may sign."""

    @classmethod
    def of(cls, settings: Settings) -> RotationPolicy:
        return cls(settings.key_rotation_days * 86400, settings.key_publish_ahead)

    def due(self, keyring: KeyRing, now: float) -> bool:
        """Whether the active key is old enough and the next key published long enough."""
        if self.rotate_after <= 0:
            return False
        published = keyring.published()
        active = [key for key in published if key.state is KeyState.ACTIVE]
        upcoming = [key for key in published if key.state is KeyState.NEXT]
        if len(active) != 1 or not upcoming:
            return False
        active_since = active[0].activated_at or active[0].created_at
        next_since = min(key.created_at for key in upcoming)
        return now - active_since >= self.rotate_after and now - next_since >= self.publish_ahead


async def rotate_if_due(
    keyring: KeyRing,
    store: Store,
    policy: RotationPolicy,
    *,
    now: float | None = None,
    purpose: str = "qr",
) -> bool:
    """Re-reads the ring, rotates if due (one worker at a time), prunes; True if it rotated.

    `purpose` names the ring (`qr`: the QR token keys; `oidc`: the ID token keys): each has
    its own rotation lock, and the audit events say which ring changed."""
    moment = time.time() if now is None else now
    keyring.reload()
    rotated = False
    lock = ROTATION_LOCK if purpose == "qr" else f"{ROTATION_LOCK}:{purpose}"
    if policy.due(keyring, moment) and await store.set_if_absent(lock, b"1", ROTATION_LOCK_SECONDS):
        try:
            keyring.reload()  # another worker may have rotated just before we took the lock
            if policy.due(keyring, moment):
                retired = b64url(keyring.signing_key.kid)
                active = b64url(keyring.rotate().kid)
                await record(
                    store,
                    "keys.rotated",
                    SYSTEM_ACTOR,
                    active,
                    {"retired": retired, "purpose": purpose},
                )
                logger.info("rotated the %s signing key: %s replaces %s", purpose, active, retired)
                rotated = True
        finally:
            await store.delete(lock)
    pruned = keyring.prune()
    if pruned:
        await record(
            store,
            "keys.pruned",
            SYSTEM_ACTOR,
            "",
            {"kids": [b64url(k) for k in pruned], "purpose": purpose},
        )
    return rotated


class InvalidKeyId(ValueError):
    """A key id on the command line is neither base64url nor hex of 8 bytes."""


def parse_kid(text: str) -> bytes:
    """A kid as `ssc keys list`, the JWKS and verdicts show it (base64url, 11 characters), or
    as 16 hex digits.

    :raises InvalidKeyId: for anything else.
    """
    text = text.strip()
    try:
        if len(text) == 2 * KID_LENGTH:
            return bytes.fromhex(text)
        kid = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise InvalidKeyId(f"{text!r} is not a key id") from None
    if len(kid) != KID_LENGTH or b64url(kid) != text:
        raise InvalidKeyId(f"{text!r} is not a key id (base64url of 8 bytes, as `ssc keys list`)")
    return kid


@dataclass(frozen=True, slots=True)
class KeyRevocation:
    kid: bytes
    active: bytes
    """The key that signs from now on (fresh if the revoked key was the active one)."""
    replaced_active: bool


async def revoke_key(
    keyring: KeyRing, store: Store, kid: bytes, reason: RevocationReason, actor: str
) -> KeyRevocation:
    """Revokes a key in the ring (persisted first), then audits it and tells every worker.

    :raises KeyRingError: if the ring holds no such key (nothing changed).
    :raises StoreUnavailable: if the store cannot be told; the revocation is already on disk
        and workers apply it at their next sync tick.
    """
    keyring.reload()
    previous = keyring.signing_key.kid
    active = keyring.revoke(kid, reason).kid
    revocation = KeyRevocation(kid, active, replaced_active=previous == kid)
    logger.warning(
        "revoked signing key %s (%s); active key is %s", b64url(kid), reason, b64url(active)
    )
    await store.publish(KEY_CHANGES, kid)
    await record(
        store,
        "keys.revoked",
        actor,
        b64url(kid),
        {"reason": str(reason), "active": b64url(active)},
    )
    return revocation
