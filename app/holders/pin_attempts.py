"""PIN attempt gates: each PIN check is reserved in the store before argon2 runs.

Reading a lock and then spending ~20 ms in argon2 lets every concurrent guess pass the read, so
a burst of guesses was checked far beyond the limit. Instead each attempt first increments a
counter in the store (one atomic `incr`, shared by every worker); only the first `limit`
reservations of a window go on to the PIN check, every later one is answered "locked" without
checking. A right PIN releases the gate (the count starts again), a wrong one keeps its
reservation, and the failure that reaches the limit locks the gate for `pin_lockout_seconds`.

Two gates per card, counted apart so that strangers cannot lock the holder out:

- `bound`: attempts from a phone the e-card is activated on (login on that phone, PIN change,
  PIN-confirmed lifecycle actions). Limit `pin_max_failures`; mirrored in the database
  (`cards.pin_failures`, `cards.pin_locked_until`), which keeps the lock if the store loses its
  data.
- `reset`: a holder's PIN resets on one of their bound phones with the document number
  (`app.holders.pin_reset`), counted per card apart from the PIN itself, so a locked PIN can
  still be reset but the document number cannot be guessed beyond `pin_max_failures`. A wrong
  document number also counts as a failed PIN attempt on the `bound` gate.
- `unbound`: attempts from any other phone (a new phone's activation, a login on a phone
  without the e-card). Limit `pin_max_failures_unbound`; kept in the store only. It is keyed
  by a keyed hash (`PiiCipher.blind_index`) of the card number as presented, so an unknown
  number is counted, and locks, exactly like a real one: the answers never tell which numbers
  exist. A login by document counts under the card's number when the document has a card and
  under the document otherwise.

Which gate applies is decided by the `device_id` the phone presents: a stranger who does not
know the id of one of the holder's phones cannot touch the holder's own gate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.cards.models import utcnow
from app.runtime import Runtime
from app.store import Store

PIN_ATTEMPTS_INDEX = "pin-attempts"
"""The blind-index field under which gate subjects are hashed (changing it resets every count)."""


class PinChannel(StrEnum):
    """Whose attempts a gate counts: the holder's own phones or everyone else."""

    bound = "bound"
    unbound = "unbound"
    reset = "reset"


@dataclass(frozen=True, slots=True)
class PinGate:
    """The store keys and the limit of one attempt counter."""

    channel: PinChannel
    key: str
    limit: int
    lockout_seconds: int

    @property
    def counter_key(self) -> str:
        return f"{self.key}:tries"

    @property
    def lock_key(self) -> str:
        return f"{self.key}:lock"


def _gate(runtime: Runtime, channel: PinChannel, subject: str, limit: int) -> PinGate:
    digest = runtime.pii.blind_index(PIN_ATTEMPTS_INDEX, f"{channel.value}:{subject}")
    return PinGate(
        channel, f"pin:{channel.value}:{digest}", limit, runtime.settings.pin_lockout_seconds
    )


def bound_gate(runtime: Runtime, card_id: uuid.UUID) -> PinGate:
    """The gate of attempts from the card's own phones."""
    return _gate(runtime, PinChannel.bound, f"card:{card_id}", runtime.settings.pin_max_failures)


def reset_gate(runtime: Runtime, card_id: uuid.UUID) -> PinGate:
    """The gate of PIN resets with the document number from the card's own phones."""
    return _gate(runtime, PinChannel.reset, f"card:{card_id}", runtime.settings.pin_max_failures)


def unbound_gate(runtime: Runtime, identifier: str) -> PinGate:
    """The gate of attempts from other phones naming `identifier` (a normalised card number,
    or `document:<type>:<number>` for a document without a card)."""
    return _gate(
        runtime,
        PinChannel.unbound,
        identifier,
        runtime.settings.pin_max_failures_unbound,
    )


async def reserve(store: Store, gate: PinGate) -> int | datetime:
    """Reserves one PIN check: its number in the window (1 to `limit`) when granted, or the
    time the gate unlocks when it is locked (then the PIN must not be checked).

    :raises StoreUnavailable: the store cannot count; the caller fails closed (503).
    """
    tries = await store.incr(gate.counter_key, ttl=gate.lockout_seconds)
    if tries <= gate.limit:
        return tries
    return await unlocks_at(store, gate)


async def unlocks_at(store: Store, gate: PinGate) -> datetime:
    """When a locked gate opens; a gate whose lock is still being written (its last granted
    attempt is being checked) opens one lockout period from now at the latest."""
    stored = await store.get(gate.lock_key)
    if stored is not None:
        try:
            return datetime.fromisoformat(stored.decode())
        except (UnicodeDecodeError, ValueError):
            pass
    return utcnow() + timedelta(seconds=gate.lockout_seconds)


async def lock(store: Store, gate: PinGate, until: datetime) -> None:
    """Locks the gate until `until`: every reservation before then is refused."""
    ttl = max((until - utcnow()).total_seconds(), 1.0)
    await store.set(gate.lock_key, until.isoformat().encode(), ttl)
    await store.set(gate.counter_key, str(gate.limit).encode(), ttl)


async def release(store: Store, gate: PinGate) -> None:
    """A right PIN: the count of this gate starts again."""
    await store.delete(gate.counter_key)
    await store.delete(gate.lock_key)
