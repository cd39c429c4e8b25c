"""PIN rules and argon2id PIN hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import DomainError
from app.security import Argon2Parameters, PinHasher, PinRule, WeakPinError, validate_pin_format

CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=8, parallelism=1)
PEPPER = b"p" * 32


@pytest.fixture(scope="module")
def hasher() -> PinHasher:
    return PinHasher(CHEAP)


def broken_rule(pin: str) -> PinRule:
    with pytest.raises(WeakPinError) as caught:
        validate_pin_format(pin)
    return PinRule(caught.value.rule)


class TestPinRules:
    @pytest.mark.parametrize("pin", ["482915", "135790", "012346", "123457", "000001", "909091"])
    def test_accepts_ordinary_pins(self, pin: str) -> None:
        validate_pin_format(pin)

    @pytest.mark.parametrize(
        "pin", ["", "12345", "1234567", "12a456", "１２３４５６", "482915\n", " 48291", "٤٨٢٩١٥"]
    )
    def test_refuses_anything_but_six_ascii_digits(self, pin: str) -> None:
        assert broken_rule(pin) is PinRule.not_six_digits

    @pytest.mark.parametrize("digit", "0123456789")
    def test_refuses_one_digit_repeated(self, digit: str) -> None:
        assert broken_rule(digit * 6) is PinRule.same_digit

    @pytest.mark.parametrize("pin", ["012345", "123456", "456789", "987654", "654321", "543210"])
    def test_refuses_runs_of_consecutive_digits(self, pin: str) -> None:
        assert broken_rule(pin) is PinRule.sequence

    @pytest.mark.parametrize("pin", ["121212", "909090", "123123", "520520"])
    def test_refuses_a_repeated_group(self, pin: str) -> None:
        assert broken_rule(pin) is PinRule.repeated_group

    def test_the_error_explains_the_rule_and_maps_to_422(self) -> None:
        with pytest.raises(WeakPinError) as caught:
            validate_pin_format("123456")
        error = caught.value
        assert "123456" in str(error)
        assert "consecutive" in str(error)
        assert isinstance(error, DomainError)
        assert (error.status, error.code, error.extensions) == (
            422,
            "weak-pin",
            {"rule": "sequence"},
        )


class TestPinHasher:
    def test_verifies_the_pin_it_hashed(self, hasher: PinHasher) -> None:
        stored = hasher.hash("482915")
        assert hasher.verify(stored, "482915")

    def test_refuses_another_pin(self, hasher: PinHasher) -> None:
        assert not hasher.verify(hasher.hash("482915"), "482916")

    def test_hashes_are_salted_argon2id_with_the_given_parameters(self, hasher: PinHasher) -> None:
        first, second = hasher.hash("482915"), hasher.hash("482915")
        assert first != second
        assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$")

    def test_default_parameters_are_owasp_argon2id(self) -> None:
        stored = PinHasher().hash("482915")
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    def test_never_stores_a_weak_pin(self, hasher: PinHasher) -> None:
        with pytest.raises(WeakPinError):
            hasher.hash("111111")

    @pytest.mark.parametrize(
        "pin", ["", "48291", "4829150", "48291\x00", pytest.param("4" * 1_000_000, id="huge")]
    )
    def test_a_malformed_pin_never_matches(self, hasher: PinHasher, pin: str) -> None:
        assert not hasher.verify(hasher.hash("482915"), pin)

    @pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB"])
    def test_a_broken_stored_hash_never_matches(self, hasher: PinHasher, stored: str) -> None:
        assert not hasher.verify(stored, "482915")

    def test_a_legacy_weak_pin_still_verifies(self, hasher: PinHasher) -> None:
        legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("123456")
        assert hasher.verify(legacy, "123456")

    @given(pin=st.text(max_size=12))
    @settings(max_examples=50)
    def test_verify_answers_false_for_any_wrong_text(self, hasher: PinHasher, pin: str) -> None:
        stored = hasher.hash("482915") if pin != "482915" else hasher.hash("482916")
        assert hasher.verify(stored, pin) is False


class TestRehash:
    def test_own_hashes_need_no_rehash(self, hasher: PinHasher) -> None:
        assert not hasher.needs_rehash(hasher.hash("482915"))

    def test_hashes_made_with_other_parameters_need_rehash(self, hasher: PinHasher) -> None:
        older = PinHasher(Argon2Parameters(time_cost=2, memory_cost_kib=8, parallelism=1))
        assert hasher.needs_rehash(older.hash("482915"))

    def test_garbage_needs_rehash(self, hasher: PinHasher) -> None:
        assert hasher.needs_rehash("not a hash")


class TestDummyVerify:
    def test_is_always_false(self, hasher: PinHasher) -> None:
        assert hasher.verify_dummy("482915") is False
        assert hasher.verify_dummy("not a pin") is False

    def test_runs_a_real_argon2_verification_with_the_same_parameters(
        self, hasher: PinHasher, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        verified: list[str] = []
        real_verify = PasswordHasher.verify

        def spy(self: PasswordHasher, stored: str | bytes, secret: str | bytes) -> bool:
            verified.append(str(stored))
            return real_verify(self, stored, secret)

        monkeypatch.setattr(PasswordHasher, "verify", spy)
        hasher.verify_dummy("482915")
        assert len(verified) == 1
        assert verified[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")


class TestPepper:
    def test_a_peppered_hash_verifies_only_with_the_same_pepper(self) -> None:
        stored = PinHasher(CHEAP, pepper=PEPPER).hash("482915")
        assert PinHasher(CHEAP, pepper=PEPPER).verify(stored, "482915")
        assert not PinHasher(CHEAP, pepper=b"q" * 32).verify(stored, "482915")
        assert not PinHasher(CHEAP).verify(stored, "482915")

    def test_a_short_pepper_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            PinHasher(CHEAP, pepper=b"p" * 16)
