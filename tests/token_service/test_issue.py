"""Issuing tokens: times, prefetch, the signing key, argument checks."""

from __future__ import annotations

import secrets

import pytest

from tests.token_service.support import ISSUER, START, FakeClock
from token_service import KeyRing, TokenIssuer, decode_token


class TestTimes:
    def test_a_token_lives_for_the_lifetime_from_now(self, issuer: TokenIssuer) -> None:
        issued = issuer.issue(secrets.token_bytes(16))
        assert (issued.issued_at, issued.not_before, issued.expires_at) == (
            int(START),
            int(START),
            int(START) + 60,
        )
        assert decode_token(issued.token).claims.not_before is None

    def test_a_prefetched_token_starts_at_not_before_written_as_iat(
        self, issuer: TokenIssuer
    ) -> None:
        issued = issuer.issue(secrets.token_bytes(16), not_before=int(START) + 30)
        assert (issued.issued_at, issued.not_before, issued.expires_at) == (
            int(START) + 30,
            int(START) + 30,
            int(START) + 90,
        )
        claims = decode_token(issued.token).claims
        assert (claims.issued_at, claims.not_before) == (int(START) + 30, None)

    def test_a_past_not_before_is_the_same_as_none(self, issuer: TokenIssuer) -> None:
        issued = issuer.issue(secrets.token_bytes(16), not_before=int(START) - 30)
        assert (issued.not_before, issued.expires_at) == (int(START), int(START) + 60)
        assert decode_token(issued.token).claims.not_before is None

    def test_fractional_clock_is_truncated(self, ring: KeyRing, clock: FakeClock) -> None:
        clock.now = START + 0.9
        issued = TokenIssuer(ring, ISSUER, bytes(16), clock=clock).issue(bytes(16))
        assert issued.issued_at == int(START)


class TestKeysAndNonces:
    def test_signs_with_the_active_key_also_after_rotation(
        self, issuer: TokenIssuer, ring: KeyRing
    ) -> None:
        assert issuer.issue(bytes(16)).kid == ring.signing_key.kid
        new = ring.rotate()
        assert issuer.issue(bytes(16)).kid == new.kid

    def test_every_token_gets_a_fresh_cti(self, issuer: TokenIssuer) -> None:
        ctis = {issuer.issue(bytes(16)).cti for _ in range(50)}
        assert len(ctis) == 50
        assert all(len(cti) == 8 for cti in ctis)


class TestArguments:
    def test_handle_must_be_16_bytes(self, issuer: TokenIssuer) -> None:
        with pytest.raises(ValueError, match="16 bytes"):
            issuer.issue(bytes(15))

    def test_status_index_must_not_be_negative(self, issuer: TokenIssuer) -> None:
        with pytest.raises(ValueError, match="negative"):
            issuer.issue(bytes(16), status_index=-1)

    @pytest.mark.parametrize(
        ("issuer_code", "handle_key", "lifetime"),
        [("", bytes(16), 60), (ISSUER, bytes(20), 60), (ISSUER, bytes(16), 0)],
        ids=["empty-issuer", "bad-handle-key", "zero-lifetime"],
    )
    def test_rejects_bad_configuration(
        self, ring: KeyRing, issuer_code: str, handle_key: bytes, lifetime: int
    ) -> None:
        with pytest.raises(ValueError):
            TokenIssuer(ring, issuer_code, handle_key, lifetime=lifetime)
