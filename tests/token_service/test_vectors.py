"""The test vectors of docs/token-spec.md give, with this code, exactly the verdicts they state.

The vectors are stored files (docs/test-vectors/ssc1-vectors.json, written once by
docs/test-vectors/generate.py): a scanner vendor implements against them, so any change of
the code that alters a verdict, or of the file that alters a vector, fails here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from token_service import (
    BUDGET_CHARS,
    OfflineVerifier,
    PublicKeySet,
    ReplayCache,
    Status,
    TokenVerifier,
    TrustedIssuer,
    TrustedKeys,
    key_id,
    verify_status_list_cwt,
)
from token_service._base45 import b45decode
from token_service.codec import P256_ORDER, PREFIX, der_signature, is_low_s, sig_structure
from token_service.keys import b64url

VECTORS_FILE = Path(__file__).parents[2] / "docs" / "test-vectors" / "ssc1-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
TOKENS = {vector["name"]: vector for vector in VECTORS["tokens"]}
OFFLINE = {vector["name"]: vector for vector in VECTORS["offline"]}
REQUIRED = {"valid", "expired", "not_yet_valid", "bad_signature", "unknown_key", "revoked"}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_keys(jwk: dict[str, str]) -> PublicKeySet:
    return PublicKeySet.from_jwks({"keys": [{k: v for k, v in jwk.items() if k != "d"}]})


def token_verifier(at: int) -> TokenVerifier:
    issuer = VECTORS["issuer"]
    entry = TrustedIssuer(
        issuer, "test", public_keys(VECTORS["issuer_key"]), VECTORS["token_lifetime"]
    )
    return TokenVerifier(
        TrustedKeys([entry]),
        trusted_issuers=[issuer],
        handle_keys={issuer: bytes.fromhex(VECTORS["handle_key"])},
        clock_skew=VECTORS["clock_skew"],
        clock=lambda: at,
    )


def cose(token: str) -> bytes:
    return b45decode(token.removeprefix(PREFIX))


def test_the_required_vectors_are_there() -> None:
    assert set(TOKENS) | set(OFFLINE) >= REQUIRED


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_token_vector(name: str) -> None:
    vector = TOKENS[name]
    expected = vector["expected"]
    check = token_verifier(vector["verify_at"]).verify(vector["token"])
    assert check.verdict.value == expected["verdict"]
    if expected["verdict"] == "valid":
        assert check.kid is not None and check.cti is not None and check.card_handle is not None
        assert {
            "kid": b64url(check.kid),
            "iss": check.issuer,
            "iat": check.issued_at,
            "exp": check.expires_at,
            "cti": check.cti.hex(),
            "status_index": check.status_index,
            "card_handle": check.card_handle.hex(),
        } == {key: value for key, value in expected.items() if key != "verdict"}


@pytest.mark.parametrize(
    "name", sorted(name for name, v in TOKENS.items() if v["expected"]["verdict"] != "malformed")
)
def test_binary_cose_of_a_vector_gets_the_same_verdict(name: str) -> None:
    vector = TOKENS[name]
    check = token_verifier(vector["verify_at"]).verify_cose(cose(vector["token"]))
    assert check.verdict.value == vector["expected"]["verdict"]


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_vector(name: str) -> None:
    vector = OFFLINE[name]
    at = vector["verify_at"]
    verifier = OfflineVerifier(
        base64.b64decode(VECTORS["bundle"]["cwt"]),
        PublicKeySet.from_jwks(VECTORS["bundle"]["anchor_jwks"]),
        clock=lambda: at,
        clock_skew=VECTORS["clock_skew"],
        replay_cache=ReplayCache(clock=lambda: at),
    )
    for scan in vector["scans"]:
        result = verifier.verify(scan["token"], scene=scan["scene"])
        assert (result.verdict.value, result.accepted) == (scan["verdict"], scan["accepted"])
        assert result.stale is scan.get("stale", False)
        assert result.reason == scan.get("reason")


class TestTheVectorsAreWhatTheySay:
    def test_the_issuer_key_is_a_p256_key_pair_with_the_profile_kid(self) -> None:
        jwk = VECTORS["issuer_key"]
        private_key = ec.derive_private_key(
            int.from_bytes(b64url_decode(jwk["d"]), "big"), ec.SECP256R1()
        )
        numbers = private_key.public_key().public_numbers()
        assert (b64url(numbers.x.to_bytes(32, "big")), b64url(numbers.y.to_bytes(32, "big"))) == (
            jwk["x"],
            jwk["y"],
        )
        assert b64url(key_id(private_key.public_key())) == jwk["kid"]

    def test_the_valid_token_fits_the_qr_budget(self) -> None:
        assert len(TOKENS["valid"]["token"]) <= BUDGET_CHARS

    def test_the_high_s_vector_is_the_twin_of_the_valid_signature(self) -> None:
        valid, twin = cose(TOKENS["valid"]["token"]), cose(TOKENS["bad_signature_high_s"]["token"])
        assert valid[:-32] == twin[:-32]
        s = int.from_bytes(valid[-32:], "big")
        assert int.from_bytes(twin[-32:], "big") == P256_ORDER - s
        assert is_low_s(valid[-64:]) and not is_low_s(twin[-64:])
        # Plain ECDSA accepts the twin: only the profile's low-S rule refuses it.
        message = cbor2.loads(twin)
        protected, payload = message.value[0], message.value[2]
        public_key = public_keys(VECTORS["issuer_key"]).find(message.value[0][-8:])
        assert public_key is not None
        public_key.verify(
            der_signature(twin[-64:]),
            sig_structure(protected, payload),
            ec.ECDSA(hashes.SHA256()),
        )

    def test_the_unknown_key_vector_is_signed_by_the_unknown_key(self) -> None:
        message = cbor2.loads(cose(TOKENS["unknown_key"]["token"]))
        assert b64url(cbor2.loads(message.value[0])[4]) == VECTORS["unknown_key"]["kid"]

    def test_a_standard_cose_library_verifies_the_valid_token_with_the_jwk_alone(self) -> None:
        jwk = VECTORS["issuer_key"]
        message = Sign1Message.decode(cose(TOKENS["valid"]["token"]))
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()
        claims = cbor2.loads(message.payload)
        assert set(claims) == {1, 4, 6, 7, -65001, -65002}

    def test_the_status_list_marks_the_listed_indexes_and_nothing_else(self) -> None:
        listed = VECTORS["status_list"]
        token = verify_status_list_cwt(
            base64.b64decode(listed["cwt"]),
            public_keys(VECTORS["issuer_key"]),
            now=listed["verify_at"],
            uri=listed["uri"],
        )
        status_list = token.status_list
        assert (status_list.bits, status_list.size) == (listed["bits"], listed["size"])
        entries = {
            str(index): Status(status_list.get(index)).name
            for index in range(status_list.size)
            if status_list.get(index) != Status.VALID
        }
        assert entries == {
            index: name for index, name in listed["entries"].items() if name != "VALID"
        }
