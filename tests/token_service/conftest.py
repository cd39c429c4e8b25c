"""Fixtures of the token library tests: a controllable clock, key rings, issuers, verifiers."""

from __future__ import annotations

import secrets

import pytest

from tests.token_service.support import GRACE, ISSUER, FakeClock
from token_service import KeyDirectory, KeyRing, TokenIssuer, TokenVerifier


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ring(clock: FakeClock) -> KeyRing:
    return KeyRing.ephemeral(retire_grace=GRACE, clock=clock)


@pytest.fixture
def handle_key() -> bytes:
    return secrets.token_bytes(16)


@pytest.fixture
def issuer(ring: KeyRing, handle_key: bytes, clock: FakeClock) -> TokenIssuer:
    return TokenIssuer(ring, ISSUER, handle_key, lifetime=60, clock=clock)


@pytest.fixture
def verifier(ring: KeyRing, handle_key: bytes, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(
        KeyDirectory({ISSUER: ring}, clock=clock),
        trusted_issuers=[ISSUER],
        handle_keys={ISSUER: handle_key},
        clock_skew=5,
        clock=clock,
    )
