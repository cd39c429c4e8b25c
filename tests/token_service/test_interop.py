"""A standard COSE library verifies our tokens with nothing but our published JWKS."""

from __future__ import annotations

import base64
import secrets

import cbor2
import pytest
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from tests.token_service.support import ISSUER, cose_bytes
from token_service import KeyRing, TokenIssuer
from token_service._base45 import b45decode
from token_service.codec import CLAIM_SEALED_HANDLE, PREFIX


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pycose_key_from_jwks(ring: KeyRing, kid: bytes) -> EC2Key:
    kid_text = base64.urlsafe_b64encode(kid).rstrip(b"=").decode()
    jwk = next(jwk for jwk in ring.jwks()["keys"] if jwk["kid"] == kid_text)
    return EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))


class TestPycose:
    def test_verifies_with_the_key_from_our_jwks(self, issuer: TokenIssuer, ring: KeyRing) -> None:
        issued = issuer.issue(secrets.token_bytes(16), status_index=5)
        message = Sign1Message.decode(b45decode(issued.token.removeprefix(PREFIX)))
        message.key = pycose_key_from_jwks(ring, issued.kid)
        assert message.verify_signature()
        assert message.phdr_encoded == cbor2.dumps({1: -7, 4: issued.kid})
        assert message.uhdr == {}

    def test_rejects_a_tampered_token(self, issuer: TokenIssuer, ring: KeyRing) -> None:
        issued = issuer.issue(secrets.token_bytes(16))
        data = bytearray(cose_bytes(issued.token))
        data[-1] ^= 0x01
        message = Sign1Message.decode(bytes(data))
        message.key = pycose_key_from_jwks(ring, issued.kid)
        assert not message.verify_signature()

    def test_a_next_key_from_the_jwks_verifies_after_rotation(
        self, issuer: TokenIssuer, ring: KeyRing
    ) -> None:
        jwks_before = ring.jwks()
        ring.rotate()
        issued = issuer.issue(secrets.token_bytes(16))
        kid_text = base64.urlsafe_b64encode(issued.kid).rstrip(b"=").decode()
        jwk = next(jwk for jwk in jwks_before["keys"] if jwk["kid"] == kid_text)
        assert jwk["status"] == "next"
        message = Sign1Message.decode(cose_bytes(issued.token))
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()


class TestCbor2:
    def test_payload_claims(self, issuer: TokenIssuer) -> None:
        issued = issuer.issue(secrets.token_bytes(16), not_before=issued_later(issuer))
        message = cbor2.loads(cose_bytes(issued.token))
        claims = cbor2.loads(message.value[2])
        assert claims[1] == ISSUER
        assert 5 not in claims  # a prefetched token starts at its iat; no nbf
        assert (claims[6], claims[4]) == (issued.not_before, issued.expires_at)
        assert claims[7] == issued.cti
        assert len(claims[CLAIM_SEALED_HANDLE]) == 16


def issued_later(issuer: TokenIssuer) -> int:
    return issuer.issue(bytes(16)).issued_at + 30


class TestIndependentBase45:
    """Only where the `base45` package is installed; test_base45.py holds the RFC vectors."""

    def test_the_base45_package_decodes_our_tokens(self, issuer: TokenIssuer) -> None:
        base45 = pytest.importorskip("base45")
        token = issuer.issue(secrets.token_bytes(16)).token
        assert base45.b45decode(token.removeprefix(PREFIX)) == cose_bytes(token)
