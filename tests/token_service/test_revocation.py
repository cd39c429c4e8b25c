"""Emergency revocation in the key ring: the key disappears from publication and verification at
once, its tokens answer `revoked_key`, a fresh key signs, and the revocation survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.token_service.support import GRACE, ISSUER, FakeClock
from token_service import (
    KeyDirectory,
    KeyRing,
    KeyRingError,
    KeyState,
    PublicKeySet,
    TokenIssuer,
    TokenVerifier,
    Verdict,
)
from token_service.keys import RevocationReason, b64url

KEK = bytes(range(32))
COMPROMISED = RevocationReason.COMPROMISED


def open_ring(directory: Path, clock: FakeClock) -> KeyRing:
    return KeyRing.load_or_create(directory, KEK, retire_grace=GRACE, clock=clock)


def published_kids(ring: KeyRing) -> set[bytes]:
    return {key.kid for key in ring.published()}


def next_kid(ring: KeyRing) -> bytes:
    return next(key.kid for key in ring.published() if key.state is KeyState.NEXT)


class TestRevokingTheActiveKey:
    def test_it_leaves_the_jwks_and_the_cose_key_set_at_once(self, ring: KeyRing) -> None:
        revoked = ring.signing_key.kid
        ring.revoke(revoked, COMPROMISED)
        assert revoked not in published_kids(ring)
        assert b64url(revoked) not in {jwk["kid"] for jwk in ring.jwks()["keys"]}
        assert revoked not in PublicKeySet.from_cose_key_set(ring.cose_key_set())
        assert ring.find(revoked) is None

    def test_a_fresh_key_signs_at_once_and_the_next_key_stays_next(
        self, ring: KeyRing, clock: FakeClock
    ) -> None:
        revoked, upcoming = ring.signing_key.kid, next_kid(ring)
        signing = ring.revoke(revoked, COMPROMISED)
        assert signing.kid not in (revoked, upcoming)
        assert ring.signing_key == signing
        states = {key.kid: key for key in ring.published()}
        assert states[signing.kid].state is KeyState.ACTIVE
        assert states[signing.kid].activated_at == clock.now
        assert states[upcoming].state is KeyState.NEXT

    def test_its_tokens_answer_revoked_key_and_the_fresh_keys_tokens_verify(
        self, ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        old = issuer.issue(b"\x01" * 16).token
        assert verifier.verify(old).valid
        ring.revoke(ring.signing_key.kid, COMPROMISED)
        assert verifier.verify(old).verdict is Verdict.REVOKED_KEY
        assert verifier.verify(issuer.issue(b"\x01" * 16).token).valid

    def test_its_tokens_answer_revoked_key_in_another_issuers_directory_too(
        self, ring: KeyRing, issuer: TokenIssuer, clock: FakeClock
    ) -> None:
        directory = KeyDirectory({ISSUER: ring, "440300": KeyRing.ephemeral()}, clock=clock)
        old = issuer.issue(b"\x02" * 16).token
        ring.revoke(ring.signing_key.kid, COMPROMISED)
        verifier = TokenVerifier(directory, [ISSUER, "440300"], {}, clock=clock)
        assert verifier.verify(old).verdict is Verdict.REVOKED_KEY


class TestRevokingOtherKeys:
    def test_revoking_the_next_key_publishes_a_fresh_next_key(self, ring: KeyRing) -> None:
        active, upcoming = ring.signing_key.kid, next_kid(ring)
        ring.revoke(upcoming, COMPROMISED)
        assert ring.signing_key.kid == active
        assert upcoming not in published_kids(ring)
        assert next_kid(ring) != upcoming
        assert ring.is_revoked(upcoming)

    def test_a_retired_key_in_its_grace_stops_verifying(
        self, ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        old = issuer.issue(b"\x03" * 16).token
        retired = ring.signing_key.kid
        ring.rotate()
        assert verifier.verify(old).valid
        ring.revoke(retired, RevocationReason.SUPERSEDED)
        assert verifier.verify(old).verdict is Verdict.REVOKED_KEY
        assert retired not in published_kids(ring)

    def test_an_unknown_kid_is_refused_and_changes_nothing(self, ring: KeyRing) -> None:
        before = ring.jwks()
        with pytest.raises(KeyRingError, match="no key"):
            ring.revoke(b"\x00" * 8, COMPROMISED)
        assert ring.jwks() == before

    def test_revoking_twice_keeps_the_first_revocation(
        self, ring: KeyRing, clock: FakeClock
    ) -> None:
        revoked = ring.signing_key.kid
        fresh = ring.revoke(revoked, COMPROMISED)
        clock.advance(10)
        assert ring.revoke(revoked, RevocationReason.SUPERSEDED) == fresh
        (record,) = ring.revoked()
        assert (record.kid, record.revocation_reason) == (revoked, COMPROMISED)
        assert record.revoked_at == clock.now - 10


class TestPersistence:
    def test_a_restart_keeps_the_revocation_and_the_fresh_key(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        revoked = ring.signing_key.kid
        fresh = ring.revoke(revoked, COMPROMISED).kid
        reopened = open_ring(tmp_path, clock)
        assert reopened.is_revoked(revoked)
        assert reopened.signing_key.kid == fresh
        assert revoked not in published_kids(reopened)

    def test_another_process_sees_it_on_reload(self, tmp_path: Path, clock: FakeClock) -> None:
        worker, operator = open_ring(tmp_path, clock), open_ring(tmp_path, clock)
        revoked = worker.signing_key.kid
        fresh = operator.revoke(revoked, COMPROMISED).kid
        assert worker.find(revoked) is not None  # until the worker re-reads the directory
        worker.reload()
        assert worker.find(revoked) is None
        assert worker.is_revoked(revoked)
        assert worker.signing_key.kid == fresh

    def test_revoked_keys_are_never_pruned(self, tmp_path: Path, clock: FakeClock) -> None:
        ring = open_ring(tmp_path, clock)
        revoked = ring.signing_key.kid
        ring.revoke(revoked, COMPROMISED)
        clock.advance(100 * GRACE)
        assert revoked not in ring.prune()
        assert open_ring(tmp_path, clock).is_revoked(revoked)

    def test_an_interrupted_revocation_of_the_active_key_never_revives_it(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        # The revoked key was written, the process died before writing its successor.
        ring = open_ring(tmp_path, clock)
        revoked = ring.signing_key.kid
        path = tmp_path / f"{revoked.hex()}.json"
        document = json.loads(path.read_text())
        document.update(state="revoked", revoked_at=clock.now, revocation_reason="compromised")
        path.write_text(json.dumps(document))
        recovered = open_ring(tmp_path, clock)
        assert recovered.signing_key.kid != revoked
        assert recovered.is_revoked(revoked)
        assert revoked not in published_kids(recovered)

    def test_key_files_written_before_revocation_existed_still_load(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        for path in tmp_path.glob("*.json"):
            document = json.loads(path.read_text())
            del document["revoked_at"], document["revocation_reason"]
            path.write_text(json.dumps(document))
        assert open_ring(tmp_path, clock).jwks() == ring.jwks()
