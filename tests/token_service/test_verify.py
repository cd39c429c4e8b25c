"""Verdicts of the verifier, in the order of docs/token-spec.md, and key resolution."""

from __future__ import annotations

import secrets

import cbor2
import pytest

from tests.token_service.support import (
    GRACE,
    ISSUER,
    OTHER_ISSUER,
    START,
    FakeClock,
    claims_map,
    forge,
    rewrap,
)
from token_service import (
    KeyDirectory,
    KeyRing,
    KeyState,
    TokenIssuer,
    TokenVerifier,
    Verdict,
)
from token_service._base45 import b45encode

SKEW = 5


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


class TestValid:
    def test_a_fresh_token_is_valid_with_its_claims(
        self, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        handle = secrets.token_bytes(16)
        issued = issuer.issue(handle, status_index=9)
        check = verifier.verify(issued.token)
        assert check.verdict is Verdict.VALID
        assert check.valid
        assert (check.kid, check.issuer, check.cti) == (issued.kid, ISSUER, issued.cti)
        assert (check.issued_at, check.not_before, check.expires_at) == (
            issued.issued_at,
            issued.not_before,
            issued.expires_at,
        )
        assert check.card_handle == handle
        assert check.sealed_handle is not None
        assert check.sealed_handle != handle
        assert check.status_index == 9

    def test_without_the_handle_key_the_handle_stays_sealed(
        self, issuer: TokenIssuer, ring: KeyRing, clock: FakeClock
    ) -> None:
        verifier = TokenVerifier(
            KeyDirectory({ISSUER: ring}, clock=clock), [ISSUER], {}, clock=clock
        )
        check = verifier.verify(issuer.issue(secrets.token_bytes(16)).token)
        assert check.verdict is Verdict.VALID
        assert check.card_handle is None
        assert check.sealed_handle is not None


class TestTimes:
    @pytest.mark.parametrize(
        ("elapsed", "verdict"),
        [(60 + SKEW, Verdict.VALID), (60 + SKEW + 0.001, Verdict.EXPIRED), (3600, Verdict.EXPIRED)],
        ids=["at-exp-plus-skew", "just-after", "long-after"],
    )
    def test_expiry_with_skew(
        self,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        clock: FakeClock,
        elapsed: float,
        verdict: Verdict,
    ) -> None:
        token = issuer.issue(secrets.token_bytes(16)).token
        clock.advance(elapsed)
        check = verifier.verify(token)
        assert check.verdict is verdict
        assert check.cti is not None  # expired tokens still report what they authentically say

    @pytest.mark.parametrize(
        ("elapsed", "verdict"),
        [
            (0, Verdict.NOT_YET_VALID),
            (30 - SKEW - 0.001, Verdict.NOT_YET_VALID),
            (30 - SKEW, Verdict.VALID),
            (30, Verdict.VALID),
        ],
        ids=["at-issue", "just-before-nbf-minus-skew", "at-nbf-minus-skew", "at-nbf"],
    )
    def test_prefetched_token_waits_for_not_before(
        self,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        clock: FakeClock,
        elapsed: float,
        verdict: Verdict,
    ) -> None:
        token = issuer.issue(secrets.token_bytes(16), not_before=int(START) + 30).token
        clock.advance(elapsed)
        assert verifier.verify(token).verdict is verdict

    @pytest.mark.parametrize(
        ("issuer_ahead", "verdict"),
        [(SKEW, Verdict.VALID), (SKEW + 1, Verdict.NOT_YET_VALID)],
        ids=["within-skew", "beyond-skew"],
    )
    def test_token_issued_in_the_future(
        self,
        ring: KeyRing,
        handle_key: bytes,
        verifier: TokenVerifier,
        issuer_ahead: float,
        verdict: Verdict,
    ) -> None:
        ahead = FakeClock(START + issuer_ahead)
        token = TokenIssuer(ring, ISSUER, handle_key, clock=ahead).issue(bytes(16)).token
        assert verifier.verify(token).verdict is verdict


class TestKeysAndIssuers:
    def test_a_key_of_nobody_we_know_is_unknown(
        self, verifier: TokenVerifier, handle_key: bytes, clock: FakeClock
    ) -> None:
        stranger = TokenIssuer(KeyRing.ephemeral(clock=clock), ISSUER, handle_key, clock=clock)
        check = verifier.verify(stranger.issue(bytes(16)).token)
        assert check.verdict is Verdict.UNKNOWN_KEY
        assert check.kid is not None
        assert check.cti is None

    def test_a_known_issuer_we_do_not_trust(self, clock: FakeClock) -> None:
        ours, theirs = KeyRing.ephemeral(clock=clock), KeyRing.ephemeral(clock=clock)
        directory = KeyDirectory({ISSUER: ours, OTHER_ISSUER: theirs}, clock=clock)
        verifier = TokenVerifier(directory, [ISSUER], {}, clock=clock)
        token_of = {
            code: TokenIssuer(ring, code, bytes(16), clock=clock).issue(bytes(16)).token
            for code, ring in ((ISSUER, ours), (OTHER_ISSUER, theirs))
        }
        assert verifier.verify(token_of[ISSUER]).verdict is Verdict.VALID
        check = verifier.verify(token_of[OTHER_ISSUER])
        assert (check.verdict, check.issuer) == (Verdict.ISSUER_UNTRUSTED, OTHER_ISSUER)

    def test_a_signed_iss_that_is_not_the_key_owner(
        self, ring: KeyRing, verifier: TokenVerifier, clock: FakeClock
    ) -> None:
        # The key of 360000 signing a token that claims to come from 440300.
        impostor = TokenIssuer(ring, OTHER_ISSUER, bytes(16), clock=clock)
        check = verifier.verify(impostor.issue(bytes(16)).token)
        assert (check.verdict, check.issuer) == (Verdict.ISSUER_UNTRUSTED, ISSUER)
        assert check.card_handle is None

    def test_both_issuers_trusted_each_with_its_handle_key(self, clock: FakeClock) -> None:
        rings = {
            ISSUER: KeyRing.ephemeral(clock=clock),
            OTHER_ISSUER: KeyRing.ephemeral(clock=clock),
        }
        keys = {code: secrets.token_bytes(32) for code in rings}
        verifier = TokenVerifier(KeyDirectory(rings, clock=clock), list(rings), keys, clock=clock)
        for code, ring in rings.items():
            handle = secrets.token_bytes(16)
            token = TokenIssuer(ring, code, keys[code], clock=clock).issue(handle).token
            check = verifier.verify(token)
            assert (check.verdict, check.issuer, check.card_handle) == (Verdict.VALID, code, handle)


class TestSignature:
    @pytest.mark.parametrize(
        "index", [-1, -33, -64], ids=["last-bit-of-s", "first-of-s", "first-of-r"]
    )
    def test_a_flipped_signature_bit(
        self, issuer: TokenIssuer, verifier: TokenVerifier, index: int
    ) -> None:
        token = issuer.issue(bytes(16)).token
        tampered = rewrap(token, lambda data: flip_bit(data, len(data) + index))
        check = verifier.verify(tampered)
        assert check.verdict is Verdict.BAD_SIGNATURE
        assert check.cti is None

    def test_a_changed_issuer_claim(self, issuer: TokenIssuer, verifier: TokenVerifier) -> None:
        token = issuer.issue(bytes(16)).token
        changed = rewrap(token, lambda data: data.replace(b"\x01\x66360000", b"\x01\x66260000"))
        assert changed != token
        assert verifier.verify(changed).verdict is Verdict.BAD_SIGNATURE

    def test_a_longer_expiry_written_into_the_payload(
        self, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        issued = issuer.issue(bytes(16))
        old, new = (
            (issued.expires_at).to_bytes(4, "big"),
            (issued.expires_at + 3600).to_bytes(4, "big"),
        )
        tampered = rewrap(
            issued.token, lambda data: data.replace(b"\x04\x1a" + old, b"\x04\x1a" + new)
        )
        assert tampered != issued.token
        assert verifier.verify(tampered).verdict is Verdict.BAD_SIGNATURE

    def test_the_kid_of_another_known_key(
        self, issuer: TokenIssuer, verifier: TokenVerifier, ring: KeyRing
    ) -> None:
        issued = issuer.issue(bytes(16))
        other = next(key.kid for key in ring.published() if key.kid != issued.kid)
        swapped = rewrap(issued.token, lambda data: data.replace(issued.kid, other))
        check = verifier.verify(swapped)
        assert (check.verdict, check.kid) == (Verdict.BAD_SIGNATURE, other)

    def test_a_changed_algorithm_is_malformed(
        self, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        token = issuer.issue(bytes(16)).token
        # Protected header a2 01 26 ...: alg -7 (0x26) becomes -8 (0x27, EdDSA).
        changed = rewrap(token, lambda data: data.replace(b"\xa2\x01\x26", b"\xa2\x01\x27", 1))
        assert verifier.verify(changed).verdict is Verdict.MALFORMED


class TestMalformed:
    @pytest.mark.parametrize(
        "token",
        [
            "",
            "SSC1:",
            "HC1:6BFOXN%TS3DH0YOJ58S",
            "SSC1:" + "0" * 10_000,
            "SSC1:" + "%" * 300,
            "SSC1:" + b45encode(secrets.token_bytes(140)),
            None,
            b"SSC1:BB8",
            42,
        ],
        ids=[
            "empty",
            "prefix-only",
            "other-scheme",
            "huge",
            "garbage",
            "random-cose",
            "none",
            "bytes",
            "int",
        ],
    )
    def test_hostile_input_is_malformed(self, verifier: TokenVerifier, token: object) -> None:
        check = verifier.verify(token)  # type: ignore[arg-type]
        assert check.verdict is Verdict.MALFORMED
        assert check.kid is None

    def test_a_validly_signed_but_malformed_payload(
        self, ring: KeyRing, verifier: TokenVerifier
    ) -> None:
        claims = claims_map()
        claims[8] = b"unknown claim"
        assert verifier.verify(forge(ring, cbor2.dumps(claims))).verdict is Verdict.MALFORMED
        claims.pop(8)
        assert verifier.verify(forge(ring, cbor2.dumps(claims))).verdict is Verdict.VALID


class TestKeyDirectory:
    def test_follows_rotation_and_grace(
        self, ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock
    ) -> None:
        before = issuer.issue(bytes(16)).token
        ring.rotate()
        after = issuer.issue(bytes(16)).token
        assert verifier.verify(before).verdict is Verdict.VALID
        assert verifier.verify(after).verdict is Verdict.VALID
        clock.advance(GRACE + 1)
        # The old key has left its grace even without a prune: its tokens are unknown now.
        assert verifier.verify(before).verdict is Verdict.UNKNOWN_KEY
        assert verifier.verify(after).verdict is Verdict.EXPIRED

    def test_knows_the_next_key_before_it_signs(
        self, ring: KeyRing, issuer: TokenIssuer, clock: FakeClock
    ) -> None:
        directory = KeyDirectory({ISSUER: ring}, clock=clock)
        upcoming = next(key.kid for key in ring.published() if key.kid != ring.signing_key.kid)
        resolved = directory.resolve(upcoming)
        assert resolved is not None
        assert resolved.issuer == ISSUER

    def test_picks_up_a_new_next_key_after_rotation(self, ring: KeyRing, clock: FakeClock) -> None:
        directory = KeyDirectory({ISSUER: ring}, clock=clock)
        ring.rotate()
        newest = next(key.kid for key in ring.published() if key.state is KeyState.NEXT)
        assert directory.resolve(newest) is not None

    def test_forgets_pruned_keys(self, ring: KeyRing, clock: FakeClock) -> None:
        directory = KeyDirectory({ISSUER: ring}, clock=clock)
        old = ring.signing_key.kid
        ring.rotate()
        clock.advance(GRACE + 1)
        ring.prune()
        clock.now = START  # even with the clock wound back, the pruned key is gone
        assert directory.resolve(old) is None

    def test_one_ring_under_two_issuers_is_refused(self, ring: KeyRing, clock: FakeClock) -> None:
        with pytest.raises(ValueError, match="more than one issuer"):
            KeyDirectory({ISSUER: ring, OTHER_ISSUER: ring}, clock=clock)
