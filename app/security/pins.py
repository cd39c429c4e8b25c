"""Card PINs: the rules a new PIN must meet, and argon2id hashing.

A 6-digit PIN has only a million values, so the hash alone cannot stop an offline search by
someone holding the table: what protects PINs is the online lockout and,
when configured, a pepper (a server secret mixed in before hashing) that is not stored beside
the hashes. The argon2 cost only makes each guess expensive.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.security.errors import WeakPinError

PIN_LENGTH = 6
_PIN_SHAPE = re.compile(r"[0-9]{6}")
PEPPER_MIN_BYTES = 32


class PinRule(StrEnum):
    """The rule a refused PIN broke (`WeakPinError.rule`)."""

    not_six_digits = "not_six_digits"
    same_digit = "same_digit"
    sequence = "sequence"
    repeated_group = "repeated_group"


def validate_pin_format(pin: str) -> None:
    """Refuses a new PIN that is not 6 digits or is among the first guesses of any attacker.

    :raises WeakPinError: with the broken rule and a message the holder can act on.
    """
    if not _PIN_SHAPE.fullmatch(pin):
        raise WeakPinError("The PIN must be exactly 6 digits (0-9).", rule=PinRule.not_six_digits)
    if len(set(pin)) == 1:
        raise WeakPinError(
            "The PIN must not be one digit repeated, such as 111111.", rule=PinRule.same_digit
        )
    steps = {int(after) - int(before) for before, after in itertools.pairwise(pin)}
    if steps in ({1}, {-1}):
        raise WeakPinError(
            "The PIN must not be a run of consecutive digits, such as 123456 or 654321.",
            rule=PinRule.sequence,
        )
    if pin == pin[:2] * 3 or pin == pin[:3] * 2:
        raise WeakPinError(
            "The PIN must not repeat a group of digits, such as 121212 or 123123.",
            rule=PinRule.repeated_group,
        )


def _has_pin_shape(pin: str) -> bool:
    return _PIN_SHAPE.fullmatch(pin) is not None


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """argon2id cost; the default (OWASP's 19 MiB, t=2, p=1) verifies in about 20 ms on the
    2-core reference machine. Tests pass cheap parameters."""

    time_cost: int = 2
    memory_cost_kib: int = 19 * 1024
    parallelism: int = 1


DEFAULT_PIN_PARAMETERS = Argon2Parameters()


class PinHasher:
    """Hashes and verifies PINs with argon2id, optionally peppered with a server secret."""

    __slots__ = ("_dummy_hash", "_hasher", "_pepper")

    def __init__(
        self,
        parameters: Argon2Parameters = DEFAULT_PIN_PARAMETERS,
        *,
        pepper: bytes | None = None,
    ) -> None:
        if pepper is not None and len(pepper) < PEPPER_MIN_BYTES:
            raise ValueError(f"the PIN pepper must be at least {PEPPER_MIN_BYTES} bytes")
        self._pepper = pepper
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
            type=Type.ID,
        )
        # Same parameters as real hashes, so that verifying against it costs the same.
        self._dummy_hash = self._hasher.hash(self._secret(f"{secrets.randbelow(10**6):06d}"))

    def hash(self, pin: str) -> str:
        """Hashes a new PIN after checking it against the PIN rules.

        :raises WeakPinError: when the PIN breaks a rule (nothing weak is ever stored).
        """
        validate_pin_format(pin)
        return self._hasher.hash(self._secret(pin))

    def verify(self, stored_hash: str, pin: str) -> bool:
        """True when `pin` matches; False for a wrong PIN, a malformed PIN or a broken hash."""
        if not _has_pin_shape(pin):
            return False
        try:
            return self._hasher.verify(stored_hash, self._secret(pin))
        except (VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, pin: str) -> bool:
        """Spends the time of a real verify and returns False, for logins naming no account.

        Without it, "no such card" would answer measurably faster than "wrong PIN", telling an
        attacker which card numbers exist.
        """
        self.verify(self._dummy_hash, pin)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters (rehash after a successful verify)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _secret(self, pin: str) -> bytes:
        if self._pepper is None:
            return pin.encode()
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).digest()
