"""Access tokens: one key and audience per principal kind, every failure one error with a reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from app.security import (
    AccessClaims,
    AccessTokenCodec,
    InvalidAccessToken,
    PrincipalKind,
    TokenRejection,
)

SECRET = b"s" * 32
ISSUER = "ssc-test"
NOW = 1_750_000_000


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def kind_key(kind: PrincipalKind, secret: bytes = SECRET) -> bytes:
    """The documented derivation: HKDF-SHA256 of the secret, info = prefix + kind."""
    info = b"ssc/access-token/v1/" + kind.value.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def valid_claims(**changes: Any) -> dict[str, Any]:
    """The claims of a valid holder token, with changes (None removes a claim)."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "card-1",
        "aud": "holder",
        "kind": "holder",
        "scopes": ["card:read"],
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "jti-1",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def forge(
    claims: dict[str, Any],
    key: bytes | None = None,
    algorithm: str = "HS256",
    typ: str = "at+jwt",
) -> str:
    signing_key = kind_key(PrincipalKind.holder) if key is None else key
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"typ": typ})


def decoded_segments(token: str) -> list[bytes] | None:
    try:
        return [
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")
        ]
    except ValueError:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def codec(clock: FakeClock) -> AccessTokenCodec:
    return AccessTokenCodec(SECRET, ISSUER, clock)


def rejection(
    codec: AccessTokenCodec, token: str, kind: PrincipalKind = PrincipalKind.holder
) -> TokenRejection:
    with pytest.raises(InvalidAccessToken) as caught:
        codec.decode(token, kind)
    return caught.value.reason


class TestIssueAndDecode:
    def test_round_trips_every_claim(self, codec: AccessTokenCodec) -> None:
        issued = codec.issue(
            PrincipalKind.scanner,
            "scanner-7",
            ["verify", "verify", "verify:batch"],
            timedelta(minutes=10),
            extra={"org": "venue-3", "device": "d-1"},
        )
        claims = codec.decode(issued.token, PrincipalKind.scanner)
        assert claims == AccessClaims(
            subject="scanner-7",
            kind=PrincipalKind.scanner,
            scopes=frozenset({"verify", "verify:batch"}),
            issued_at=datetime.fromtimestamp(NOW, UTC),
            expires_at=datetime.fromtimestamp(NOW + 600, UTC),
            jti=issued.jti,
            extra={"org": "venue-3", "device": "d-1"},
        )
        assert issued.expires_at == datetime.fromtimestamp(NOW + 600, UTC)

    def test_ttl_may_be_whole_seconds(self, codec: AccessTokenCodec) -> None:
        issued = codec.issue(PrincipalKind.admin, "op-1", [], 60)
        assert issued.expires_at == datetime.fromtimestamp(NOW + 60, UTC)

    def test_a_token_without_scopes_decodes_with_none(self, codec: AccessTokenCodec) -> None:
        token = codec.issue(PrincipalKind.department, "dept-1", [], 60).token
        assert codec.decode(token, PrincipalKind.department).scopes == frozenset()

    def test_each_token_has_a_fresh_jti(self, codec: AccessTokenCodec) -> None:
        first = codec.issue(PrincipalKind.holder, "card-1", [], 60)
        second = codec.issue(PrincipalKind.holder, "card-1", [], 60)
        assert first.jti != second.jti

    def test_header_is_hs256_access_token(self, codec: AccessTokenCodec) -> None:
        token = codec.issue(PrincipalKind.holder, "card-1", [], 60).token
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}

    def test_the_audience_is_the_kind(self, codec: AccessTokenCodec) -> None:
        token = codec.issue(PrincipalKind.relying_party, "client-1", [], 60).token
        payload = jwt.decode(token, options={"verify_signature": False})
        assert payload["aud"] == payload["kind"] == "relying_party"

    def test_each_kind_signs_with_its_own_derived_key(self, codec: AccessTokenCodec) -> None:
        for kind in PrincipalKind:
            token = codec.issue(kind, "someone", [], 60).token
            jwt.decode(
                token,
                kind_key(kind),
                algorithms=["HS256"],
                audience=kind.value,
                options={"verify_exp": False, "verify_iat": False},
            )

    @pytest.mark.parametrize("ttl", [0, -1, timedelta(milliseconds=500)])
    def test_refuses_a_ttl_under_one_second(self, codec: AccessTokenCodec, ttl: Any) -> None:
        with pytest.raises(ValueError, match="ttl"):
            codec.issue(PrincipalKind.holder, "card-1", [], ttl)

    def test_refuses_an_empty_subject(self, codec: AccessTokenCodec) -> None:
        with pytest.raises(ValueError, match="subject"):
            codec.issue(PrincipalKind.holder, "", [], 60)

    def test_refuses_a_short_secret(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            AccessTokenCodec(b"s" * 31, ISSUER)


class TestKindSeparation:
    @pytest.mark.parametrize("presented_as", [k for k in PrincipalKind if k != "holder"])
    def test_a_holder_token_is_refused_as_any_other_kind(
        self, codec: AccessTokenCodec, presented_as: PrincipalKind
    ) -> None:
        token = codec.issue(PrincipalKind.holder, "card-1", ["verify"], 60).token
        assert rejection(codec, token, presented_as) is TokenRejection.wrong_kind

    def test_a_token_claiming_another_kind_under_this_kinds_key_is_refused(
        self, codec: AccessTokenCodec
    ) -> None:
        token = forge(valid_claims(kind="scanner"))
        assert rejection(codec, token) is TokenRejection.wrong_kind

    def test_a_token_for_another_audience_under_this_kinds_key_is_refused(
        self, codec: AccessTokenCodec
    ) -> None:
        token = forge(valid_claims(aud="scanner"))
        assert rejection(codec, token) is TokenRejection.wrong_kind


class TestSignature:
    def test_another_secret_is_a_bad_signature(self, codec: AccessTokenCodec) -> None:
        token = forge(valid_claims(), key=kind_key(PrincipalKind.holder, b"x" * 32))
        assert rejection(codec, token) is TokenRejection.bad_signature

    def test_a_changed_payload_is_a_bad_signature(self, codec: AccessTokenCodec) -> None:
        header, _, signature = codec.issue(PrincipalKind.holder, "card-1", [], 60).token.split(".")
        payload = valid_claims(sub="card-2")
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        assert rejection(codec, f"{header}.{body}.{signature}") is TokenRejection.bad_signature

    def test_a_token_signed_with_the_raw_secret_is_a_bad_signature(
        self, codec: AccessTokenCodec
    ) -> None:
        assert rejection(codec, forge(valid_claims(), key=SECRET)) is TokenRejection.bad_signature

    @pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
    @pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
    def test_other_hmac_algorithms_under_the_right_key_are_refused(
        self, codec: AccessTokenCodec, algorithm: str
    ) -> None:
        token = forge(valid_claims(), algorithm=algorithm)
        assert rejection(codec, token) is TokenRejection.algorithm_not_allowed

    def test_the_none_algorithm_is_refused(self, codec: AccessTokenCodec) -> None:
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps(valid_claims()).encode()).rstrip(b"=")
        token = f"{header.decode()}.{body.decode()}."
        assert rejection(codec, token) is TokenRejection.algorithm_not_allowed

    def test_an_asymmetric_algorithm_header_is_refused(self, codec: AccessTokenCodec) -> None:
        token = codec.issue(PrincipalKind.holder, "card-1", [], 60).token
        _, body, signature = token.split(".")
        header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"at+jwt"}').rstrip(b"=")
        forged = f"{header.decode()}.{body}.{signature}"
        assert rejection(codec, forged) is TokenRejection.algorithm_not_allowed

    def test_a_jwt_that_is_not_an_access_token_is_refused(self, codec: AccessTokenCodec) -> None:
        assert rejection(codec, forge(valid_claims(), typ="JWT")) is TokenRejection.malformed


class TestClaims:
    @pytest.mark.parametrize(
        "missing", ["iss", "sub", "aud", "kind", "scopes", "iat", "exp", "jti"]
    )
    def test_every_claim_is_required(self, codec: AccessTokenCodec, missing: str) -> None:
        claims = valid_claims()
        del claims[missing]
        assert rejection(codec, forge(claims)) is TokenRejection.missing_claim

    def test_another_issuer_is_refused(self, clock: FakeClock) -> None:
        token = AccessTokenCodec(SECRET, "elsewhere", clock).issue(
            PrincipalKind.holder, "card-1", [], 60
        )
        codec = AccessTokenCodec(SECRET, ISSUER, clock)
        assert rejection(codec, token.token) is TokenRejection.wrong_issuer

    @pytest.mark.parametrize(
        "changes",
        [
            {"sub": ""},
            {"sub": 7},
            {"scopes": "card:read"},
            {"scopes": ["card:read", 3]},
            {"iat": "now"},
            {"iat": True},
            {"exp": 1e30},
            {"exp": -1},
            {"jti": ""},
            {"ext": ["device"]},
            {"ext": {"device": 1}},
        ],
    )
    def test_claims_of_the_wrong_shape_are_malformed(
        self, codec: AccessTokenCodec, changes: dict[str, Any]
    ) -> None:
        assert rejection(codec, forge(valid_claims(**changes))) is TokenRejection.malformed


class TestLifetime:
    def test_valid_until_expiry_plus_leeway(
        self, codec: AccessTokenCodec, clock: FakeClock
    ) -> None:
        token = codec.issue(PrincipalKind.holder, "card-1", [], 60).token
        clock.now = NOW + 64
        codec.decode(token, PrincipalKind.holder)
        clock.now = NOW + 65
        assert rejection(codec, token) is TokenRejection.expired

    def test_leeway_is_injectable(self, clock: FakeClock) -> None:
        strict = AccessTokenCodec(SECRET, ISSUER, clock, leeway=0)
        token = strict.issue(PrincipalKind.holder, "card-1", [], 60).token
        clock.now = NOW + 60
        assert rejection(strict, token) is TokenRejection.expired
        lenient = AccessTokenCodec(SECRET, ISSUER, clock, leeway=timedelta(seconds=30))
        clock.now = NOW + 89
        lenient.decode(token, PrincipalKind.holder)

    def test_a_token_issued_in_the_future_is_not_yet_valid(self, clock: FakeClock) -> None:
        codec = AccessTokenCodec(SECRET, ISSUER, clock)
        clock.now = NOW + 6
        token = codec.issue(PrincipalKind.holder, "card-1", [], 60).token
        clock.now = NOW
        assert rejection(codec, token) is TokenRejection.not_yet_valid

    def test_an_expired_forgery_is_reported_as_a_bad_signature(
        self, codec: AccessTokenCodec
    ) -> None:
        claims = valid_claims(exp=NOW - 3600)
        token = forge(claims, key=kind_key(PrincipalKind.holder, b"x" * 32))
        assert rejection(codec, token) is TokenRejection.bad_signature


class TestHostileInput:
    @pytest.mark.parametrize("token", ["", "a", "a.b", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9.@@.x"])
    def test_garbage_is_malformed(self, codec: AccessTokenCodec, token: str) -> None:
        assert rejection(codec, token) is TokenRejection.malformed

    def test_a_header_without_algorithm_is_refused(self, codec: AccessTokenCodec) -> None:
        assert rejection(codec, "e30.e30.") is TokenRejection.algorithm_not_allowed

    def test_a_huge_token_is_refused_before_parsing(self, codec: AccessTokenCodec) -> None:
        assert rejection(codec, "a" * 5000) is TokenRejection.too_large

    def test_a_non_object_payload_is_malformed(self, codec: AccessTokenCodec) -> None:
        token = jwt.api_jws.encode(
            b"[1, 2]", kind_key(PrincipalKind.holder), "HS256", headers={"typ": "at+jwt"}
        )
        assert rejection(codec, token) is TokenRejection.malformed

    @given(token=st.text(max_size=300))
    def test_any_text_only_ever_raises_invalid_access_token(self, token: str) -> None:
        codec = AccessTokenCodec(SECRET, ISSUER, FakeClock())
        with pytest.raises(InvalidAccessToken):
            codec.decode(token, PrincipalKind.holder)

    @given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-.=x"))
    def test_any_one_character_change_is_refused(self, position: int, replacement: str) -> None:
        codec = AccessTokenCodec(SECRET, ISSUER, FakeClock())
        token = codec.issue(PrincipalKind.holder, "card-1", ["card:read"], 60).token
        index = position % len(token)
        changed = token[:index] + replacement + token[index + 1 :]
        if decoded_segments(changed) == decoded_segments(token):
            return  # the spare low bits of a final base64 character carry no data
        with pytest.raises(InvalidAccessToken):
            codec.decode(changed, PrincipalKind.holder)

    def test_the_error_is_a_401_problem_with_the_reason(self, codec: AccessTokenCodec) -> None:
        with pytest.raises(InvalidAccessToken) as caught:
            codec.decode("a.b.c", PrincipalKind.holder)
        error = caught.value
        assert (error.status, error.code) == (401, "invalid-access-token")
        assert error.extensions == {"reason": "malformed"}


class TestVerifiedCache:
    """A token decoded once is not verified again by pyjwt, but still ages and keeps its kind."""

    def test_a_decoded_token_still_expires(self, codec: AccessTokenCodec, clock: FakeClock) -> None:
        token = codec.issue(PrincipalKind.holder, "card", ["card"], 60).token
        assert codec.decode(token, PrincipalKind.holder).subject == "card"
        assert codec.decode(token, PrincipalKind.holder).subject == "card"  # from the cache
        clock.now += 120
        assert rejection(codec, token) is TokenRejection.expired

    def test_a_decoded_token_is_still_refused_as_another_kind(
        self, codec: AccessTokenCodec
    ) -> None:
        token = codec.issue(PrincipalKind.holder, "card", ["card"], 60).token
        codec.decode(token, PrincipalKind.holder)
        assert rejection(codec, token, PrincipalKind.scanner) is TokenRejection.wrong_kind

    def test_a_changed_token_is_verified_again(self, codec: AccessTokenCodec) -> None:
        token = codec.issue(PrincipalKind.holder, "card", ["card"], 60).token
        codec.decode(token, PrincipalKind.holder)
        head, payload, signature = token.split(".")
        tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
        assert rejection(codec, tampered) is TokenRejection.bad_signature

    def test_the_cache_is_bounded(
        self, codec: AccessTokenCodec, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(AccessTokenCodec, "VERIFIED_CACHE_SIZE", 3)
        tokens = [codec.issue(PrincipalKind.holder, f"c{n}", ["card"], 60).token for n in range(5)]
        for token in tokens:
            codec.decode(token, PrincipalKind.holder)
        assert len(codec._verified) == 3
        assert all(codec.decode(token, PrincipalKind.holder) for token in tokens)
