"""Scheduled key rotation (DESIGN.md section 9).

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
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.audit.log import record
from app.config import Settings
from app.store import Store
from token_service import KeyRing, KeyState
from token_service.keys import b64url

logger = logging.getLogger("ssc.trust.keys")

ROTATION_LOCK = "keys:rotation-lock"
ROTATION_LOCK_SECONDS = 60
SYSTEM_ACTOR = "system:key-rotation"


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
    keyring: KeyRing, store: Store, policy: RotationPolicy, *, now: float | None = None
) -> bool:
    """Re-reads the ring, rotates if due (one worker at a time), prunes; True if it rotated."""
    moment = time.time() if now is None else now
    keyring.reload()
    rotated = False
    if policy.due(keyring, moment) and await store.set_if_absent(
        ROTATION_LOCK, b"1", ROTATION_LOCK_SECONDS
    ):
        try:
            keyring.reload()  # another worker may have rotated just before we took the lock
            if policy.due(keyring, moment):
                retired = b64url(keyring.signing_key.kid)
                active = b64url(keyring.rotate().kid)
                await record(store, "keys.rotated", SYSTEM_ACTOR, active, {"retired": retired})
                logger.info("rotated the signing key: %s replaces %s", active, retired)
                rotated = True
        finally:
            await store.delete(ROTATION_LOCK)
    pruned = keyring.prune()
    if pruned:
        await record(store, "keys.pruned", SYSTEM_ACTOR, "", {"kids": [b64url(k) for k in pruned]})
    return rotated
