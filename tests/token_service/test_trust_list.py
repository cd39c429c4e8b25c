"""Signed trust lists: several issuers' keys, verified once, then resolving tokens' kids."""

from __future__ import annotations

import base64
import secrets

import cbor2
import jwt
import pytest
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from tests.token_service.support import ISSUER, OTHER_ISSUER, START, FakeClock
from token_service import (
    KeyRing,
    KeySetError,
    PublicKeySet,
    TokenIssuer,
    TokenVerifier,
    TrustedIssuer,
    TrustList,
    TrustListError,
    Verdict,
    sign_trust_list_cwt,
    sign_trust_list_jwt,
    verify_trust_list_cwt,
    verify_trust_list_jwt,
)
from token_service.keys import b64url

NOW = int(START)
CHONGQING = "500000"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Deployment:
    """An operator ring and two issuers, each with its own key ring."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.operator = KeyRing.ephemeral(clock=clock)
        self.rings = {
            ISSUER: KeyRing.ephemeral(clock=clock),
            CHONGQING: KeyRing.ephemeral(clock=clock),
        }
        self.trust_list = TrustList(
            sequence=7,
            issued_at=NOW,
            expires_at=NOW + 86_400,
            issuers=(
                TrustedIssuer.from_keyring(
                    ISSUER,
                    "江西省",
                    self.rings[ISSUER],
                    token_lifetime=60,
                    status_list_uri="https://jx.example.cn/status/1",
                ),
                TrustedIssuer.from_keyring(
                    CHONGQING, "重庆市", self.rings[CHONGQING], token_lifetime=60
                ),
            ),
        )

    @property
    def operator_keys(self) -> PublicKeySet:
        return PublicKeySet.from_keyring(self.operator)

    def token(self, code: str, ring: KeyRing | None = None) -> str:
        ring = ring or self.rings[code]
        return TokenIssuer(ring, code, bytes(16), clock=self.clock).issue(bytes(16)).token


@pytest.fixture
def deployment(clock: FakeClock) -> Deployment:
    return Deployment(clock)


class TestRoundTrip:
    def test_cwt_and_jwt_carry_the_same_list(self, deployment: Deployment) -> None:
        keys = deployment.operator_keys
        from_cwt = verify_trust_list_cwt(
            sign_trust_list_cwt(deployment.trust_list, deployment.operator), keys, now=NOW
        )
        from_jwt = verify_trust_list_jwt(
            sign_trust_list_jwt(deployment.trust_list, deployment.operator), keys, now=NOW
        )
        assert from_cwt == from_jwt == deployment.trust_list
        chongqing = from_cwt.issuer(CHONGQING)
        assert chongqing is not None
        assert (chongqing.name, chongqing.token_lifetime, chongqing.status_list_uri) == (
            "重庆市",
            60,
            None,
        )
        assert from_cwt.codes == {ISSUER, CHONGQING}


class TestResolver:
    def test_a_token_of_the_second_issuer_verifies(self, deployment: Deployment) -> None:
        data = sign_trust_list_cwt(deployment.trust_list, deployment.operator)
        trusted = verify_trust_list_cwt(data, deployment.operator_keys, now=NOW)
        verifier = TokenVerifier(trusted.resolver(), trusted.codes, {}, clock=deployment.clock)
        check = verifier.verify(deployment.token(CHONGQING))
        assert (check.verdict, check.issuer) == (Verdict.VALID, CHONGQING)
        assert verifier.verify(deployment.token(ISSUER)).verdict is Verdict.VALID

    def test_an_issuer_not_on_the_list_is_an_unknown_key(self, deployment: Deployment) -> None:
        # The verifier never held the outsider's keys, and an unverified `iss` proves nothing.
        trusted = deployment.trust_list
        verifier = TokenVerifier(trusted.resolver(), trusted.codes, {}, clock=deployment.clock)
        outsider = deployment.token(OTHER_ISSUER, KeyRing.ephemeral(clock=deployment.clock))
        assert verifier.verify(outsider).verdict is Verdict.UNKNOWN_KEY

    def test_a_listed_key_signing_for_another_issuer_is_untrusted(
        self, deployment: Deployment
    ) -> None:
        trusted = deployment.trust_list
        verifier = TokenVerifier(trusted.resolver(), trusted.codes, {}, clock=deployment.clock)
        impostor = deployment.token(CHONGQING, deployment.rings[ISSUER])
        assert verifier.verify(impostor).verdict is Verdict.ISSUER_UNTRUSTED

    def test_a_kid_shared_by_two_issuers_is_refused(self, deployment: Deployment) -> None:
        ring = deployment.rings[ISSUER]
        with pytest.raises(TrustListError, match="shared"):
            TrustList(
                1,
                NOW,
                NOW + 60,
                (
                    TrustedIssuer.from_keyring(ISSUER, "a", ring, token_lifetime=60),
                    TrustedIssuer.from_keyring(CHONGQING, "b", ring, token_lifetime=60),
                ),
            )


class TestRefusals:
    def test_a_tampered_list_is_refused(self, deployment: Deployment) -> None:
        data = sign_trust_list_cwt(deployment.trust_list, deployment.operator)
        message = cbor2.loads(data)
        claims = cbor2.loads(message.value[2])
        claims["issuers"][1]["keys"] = claims["issuers"][0]["keys"][:1]
        claims["issuers"][0]["keys"] = claims["issuers"][0]["keys"][1:]
        message.value[2] = cbor2.dumps(claims)
        with pytest.raises(TrustListError) as raised:
            verify_trust_list_cwt(cbor2.dumps(message), deployment.operator_keys, now=NOW)
        assert raised.value.reason == "bad_signature"

    def test_a_list_signed_by_an_issuer_instead_of_the_operator(
        self, deployment: Deployment
    ) -> None:
        data = sign_trust_list_jwt(deployment.trust_list, deployment.rings[ISSUER])
        with pytest.raises(TrustListError) as raised:
            verify_trust_list_jwt(data, deployment.operator_keys, now=NOW)
        assert raised.value.reason == "unknown_key"

    @pytest.mark.parametrize(
        ("now", "min_sequence", "reason"),
        [(NOW + 86_406, None, "expired"), (NOW - 6, None, "not_yet_valid"), (NOW, 8, "rollback")],
    )
    def test_times_and_sequence(
        self, deployment: Deployment, now: int, min_sequence: int | None, reason: str
    ) -> None:
        data = sign_trust_list_cwt(deployment.trust_list, deployment.operator)
        with pytest.raises(TrustListError) as raised:
            verify_trust_list_cwt(
                data, deployment.operator_keys, now=now, min_sequence=min_sequence
            )
        assert raised.value.reason == reason

    def test_the_current_sequence_is_accepted(self, deployment: Deployment) -> None:
        data = sign_trust_list_cwt(deployment.trust_list, deployment.operator)
        trusted = verify_trust_list_cwt(data, deployment.operator_keys, now=NOW, min_sequence=7)
        assert trusted.sequence == 7

    def test_a_key_whose_kid_is_not_its_key_id_is_refused(self, deployment: Deployment) -> None:
        jwks = deployment.rings[ISSUER].jwks()
        jwks["keys"][0]["kid"] = b64url(secrets.token_bytes(8))
        with pytest.raises(KeySetError, match="key id"):
            PublicKeySet.from_jwks(jwks)


class TestIndependentLibraries:
    def test_pycose_verifies_the_cwt(self, deployment: Deployment) -> None:
        data = sign_trust_list_cwt(deployment.trust_list, deployment.operator)
        message = Sign1Message.decode(data)
        jwk = deployment.operator.jwks()["keys"][1]  # the active key (next comes first)
        assert jwk["status"] == "active"
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()
        assert message.payload is not None
        claims = cbor2.loads(message.payload)
        assert [entry["code"] for entry in claims["issuers"]] == [ISSUER, CHONGQING]

    def test_pyjwt_verifies_the_jwt(self, deployment: Deployment) -> None:
        text = sign_trust_list_jwt(deployment.trust_list, deployment.operator)
        header = jwt.get_unverified_header(text)
        assert header["typ"] == "trustlist+jwt"
        jwk = next(k for k in deployment.operator.jwks()["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(
            text, jwt.PyJWK(jwk).key, algorithms=["ES256"], options={"verify_exp": False}
        )
        assert claims["seq"] == 7
        chongqing = claims["issuers"][1]
        assert (
            chongqing["keys"]
            == PublicKeySet.from_keyring(deployment.rings[CHONGQING]).jwks()["keys"]
        )
