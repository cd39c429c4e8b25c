"""Properties over generated input: round trips, and verify never raising."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.token_service.support import START, FakeClock
from token_service import (
    KeyDirectory,
    KeyRing,
    TokenIssuer,
    TokenVerifier,
    Verdict,
    decode_token,
)
from token_service._base45 import ALPHABET, b45decode, b45encode
from token_service.codec import PREFIX, is_low_s

CLOCK = FakeClock()
ISSUERS = ["360000", "440300", "110000", "X"]
RINGS = {code: KeyRing.ephemeral(clock=CLOCK) for code in ISSUERS}
HANDLE_KEYS = {
    code: secrets.token_bytes(16 if index % 2 else 32) for index, code in enumerate(ISSUERS)
}
VERIFIER = TokenVerifier(
    KeyDirectory(RINGS, clock=CLOCK), ISSUERS, HANDLE_KEYS, clock_skew=5, clock=CLOCK
)
NOT_VALID = set(Verdict) - {Verdict.VALID}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestBase45:
    @given(st.binary(max_size=400))
    def test_round_trip(self, data: bytes) -> None:
        assert b45decode(b45encode(data)) == data

    @given(st.text(alphabet=ALPHABET, max_size=60))
    def test_decoding_alphabet_text_raises_only_its_own_error(self, text: str) -> None:
        try:
            data = b45decode(text)
        except ValueError:
            return
        assert b45encode(data) == text


class TestTokenRoundTrip:
    @FAST
    @given(
        issuer=st.sampled_from(ISSUERS),
        handle=st.binary(min_size=16, max_size=16),
        issued_at=st.integers(min_value=0, max_value=2**32 - 1 - 3600 - 600),  # exp below 2106
        delay=st.one_of(st.none(), st.integers(min_value=1, max_value=600)),
        lifetime=st.integers(min_value=1, max_value=3600),
        status_index=st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    )
    def test_issue_then_verify(
        self,
        issuer: str,
        handle: bytes,
        issued_at: int,
        delay: int | None,
        lifetime: int,
        status_index: int | None,
    ) -> None:
        clock = FakeClock(float(issued_at))
        token_issuer = TokenIssuer(RINGS[issuer], issuer, HANDLE_KEYS[issuer], lifetime, clock)
        not_before = None if delay is None else issued_at + delay
        issued = token_issuer.issue(handle, not_before=not_before, status_index=status_index)
        CLOCK.now = issued.not_before
        check = VERIFIER.verify(issued.token)
        assert check.verdict is Verdict.VALID
        assert (check.issuer, check.card_handle, check.cti) == (issuer, handle, issued.cti)
        assert (check.not_before, check.expires_at) == (issued.not_before, issued.expires_at)
        assert check.status_index == status_index
        assert decode_token(issued.token).claims.issued_at == issued.not_before
        assert is_low_s(decode_token(issued.token).signature)


class TestHostileInput:
    @FAST
    @given(st.binary(max_size=600))
    def test_random_cose_bytes_are_never_valid(self, data: bytes) -> None:
        CLOCK.now = START
        assert VERIFIER.verify(PREFIX + b45encode(data)).verdict in NOT_VALID

    @FAST
    @given(st.text(max_size=700))
    def test_random_text_is_malformed(self, text: str) -> None:
        assert VERIFIER.verify(text).verdict is Verdict.MALFORMED
        assert VERIFIER.verify(PREFIX + text).verdict is Verdict.MALFORMED

    @FAST
    @given(st.data())
    def test_mutated_tokens_are_never_valid(self, data: st.DataObject) -> None:
        CLOCK.now = START
        token = (
            TokenIssuer(RINGS["360000"], "360000", HANDLE_KEYS["360000"], clock=CLOCK)
            .issue(bytes(16))
            .token
        )
        raw = bytearray(b45decode(token.removeprefix(PREFIX)))
        position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[position] ^= data.draw(st.integers(min_value=1, max_value=255))
        assert VERIFIER.verify(PREFIX + b45encode(bytes(raw))).verdict in NOT_VALID
