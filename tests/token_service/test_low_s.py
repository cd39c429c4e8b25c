"""Low-S: ECDSA verifies `(r, s)` and `(r, n - s)` alike, so every signature we make has
`s <= n/2` and every verifier refuses the other spelling (`bad_signature`), for QR tokens
and for the signed documents (status lists, trust lists, bundles; COSE and JWS)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.token_service.support import ISSUER, FakeClock, cose_bytes, high_s_twin, twin_s
from token_service import (
    KeyRing,
    OfflineVerifier,
    PublicKeySet,
    StatusList,
    StatusListError,
    TokenIssuer,
    TokenVerifier,
    TrustedIssuer,
    Verdict,
    build_bundle,
    decode_token,
    sign_status_list_cwt,
    sign_status_list_jwt,
    verify_status_list_cwt,
    verify_status_list_jwt,
)
from token_service.codec import der_signature, is_low_s, sig_structure

URI = "https://jx.example.cn/status/1"
SIGNATURES = 64  # a high-S signature comes every other time: 2**-64 to miss it
NOW = 1_780_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws_twin(text: str) -> str:
    head, body, signature = text.split(".")
    raw = b64url_decode(signature)
    return f"{head}.{body}.{b64url(raw[:32] + twin_s(raw[32:]))}"


def cose_twin(data: bytes) -> bytes:
    return data[:-32] + twin_s(data[-32:])


class TestTokens:
    def test_every_token_we_sign_is_low_s(self, issuer: TokenIssuer) -> None:
        for _ in range(SIGNATURES):
            assert is_low_s(decode_token(issuer.issue(bytes(16)).token).signature)

    def test_the_high_s_twin_of_a_valid_token_is_a_bad_signature(
        self, issuer: TokenIssuer, verifier: TokenVerifier, ring: KeyRing
    ) -> None:
        token = issuer.issue(bytes(16)).token
        twin = high_s_twin(token)
        decoded = decode_token(twin)
        ring.signing_key.private_key.public_key().verify(  # ECDSA itself accepts the twin
            der_signature(decoded.signature),
            sig_structure(decoded.protected, decoded.payload),
            ec.ECDSA(hashes.SHA256()),
        )
        check = verifier.verify(twin)
        assert check.verdict is Verdict.BAD_SIGNATURE
        assert check.cti is None
        assert verifier.verify(token).verdict is Verdict.VALID

    def test_the_high_s_twin_of_the_binary_cose_is_a_bad_signature(
        self, issuer: TokenIssuer, verifier: TokenVerifier
    ) -> None:
        token = issuer.issue(bytes(16)).token
        assert verifier.verify_cose(cose_twin(cose_bytes(token))).verdict is Verdict.BAD_SIGNATURE

    def test_offline_the_high_s_twin_is_a_bad_signature(self, clock: FakeClock) -> None:
        anchor, ring = KeyRing.ephemeral(clock=clock), KeyRing.ephemeral(clock=clock)
        now = int(clock())
        bundle = build_bundle(
            keyring=anchor,
            client_id="scanner-1",
            scenes=("bus",),
            issuers=[
                TrustedIssuer.from_keyring(
                    ISSUER, ISSUER, ring, token_lifetime=60, status_list_uri=URI
                )
            ],
            status_lists={
                ISSUER: sign_status_list_cwt(
                    StatusList(1024), uri=URI, keyring=ring, issued_at=now, expires_in=86_400
                )
            },
            issued_at=now,
            max_age=3600,
        )
        verifier = OfflineVerifier(bundle.data, PublicKeySet.from_keyring(anchor), clock=clock)
        token = TokenIssuer(ring, ISSUER, bytes(16), clock=clock).issue(bytes(16), status_index=7)
        twin = verifier.verify(high_s_twin(token.token))
        assert twin.verdict is Verdict.BAD_SIGNATURE
        assert not twin.accepted
        assert verifier.verify(token.token).accepted


class TestDocuments:
    def test_every_cose_document_we_sign_is_low_s(self, ring: KeyRing) -> None:
        for _ in range(SIGNATURES):
            data = sign_status_list_cwt(
                StatusList(16), uri=URI, keyring=ring, issued_at=NOW, expires_in=60
            )
            assert is_low_s(data[-64:])

    def test_every_jws_we_sign_is_low_s(self, ring: KeyRing) -> None:
        for _ in range(SIGNATURES):
            text = sign_status_list_jwt(
                StatusList(16), uri=URI, keyring=ring, issued_at=NOW, expires_in=60
            )
            assert is_low_s(b64url_decode(text.rpartition(".")[2]))

    def test_the_high_s_twin_of_a_cose_document_is_a_bad_signature(self, ring: KeyRing) -> None:
        data = sign_status_list_cwt(
            StatusList(16), uri=URI, keyring=ring, issued_at=NOW, expires_in=60
        )
        keys = PublicKeySet.from_keyring(ring)
        verify_status_list_cwt(data, keys, now=NOW, uri=URI)
        with pytest.raises(StatusListError) as raised:
            verify_status_list_cwt(cose_twin(data), keys, now=NOW, uri=URI)
        assert raised.value.reason == "bad_signature"

    def test_the_high_s_twin_of_a_jws_is_a_bad_signature(self, ring: KeyRing) -> None:
        text = sign_status_list_jwt(
            StatusList(16), uri=URI, keyring=ring, issued_at=NOW, expires_in=60
        )
        keys = PublicKeySet.from_keyring(ring)
        verify_status_list_jwt(text, keys, now=NOW, uri=URI)
        with pytest.raises(StatusListError) as raised:
            verify_status_list_jwt(jws_twin(text), keys, now=NOW, uri=URI)
        assert raised.value.reason == "bad_signature"
