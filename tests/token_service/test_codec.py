"""The SSC1 token format: layout, QR budget, privacy of the card handle, strict decoding."""

from __future__ import annotations

import secrets

import cbor2
import pytest
import segno
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.token_service.support import (
    ISSUER,
    START,
    FakeClock,
    claims_map,
    cose_bytes,
    forge,
    rewrap,
)
from token_service import (
    BUDGET_CHARS,
    KeyRing,
    MalformedTokenError,
    TokenBudgetError,
    TokenIssuer,
    decode_token,
)
from token_service._base45 import b45encode
from token_service.codec import (
    CLAIM_SEALED_HANDLE,
    CLAIM_STATUS_INDEX,
    HandleCipher,
)


class TestLayout:
    def test_round_trip_of_the_claims(self, issuer: TokenIssuer) -> None:
        issued = issuer.issue(secrets.token_bytes(16), status_index=42)
        decoded = decode_token(issued.token)
        assert decoded.kid == issued.kid
        claims = decoded.claims
        assert (claims.issuer, claims.issued_at, claims.expires_at) == (
            ISSUER,
            issued.issued_at,
            issued.expires_at,
        )
        assert (claims.cti, claims.not_before, claims.status_index) == (issued.cti, None, 42)

    def test_is_a_tagged_cose_sign1_with_es256_and_the_kid(self, issuer: TokenIssuer) -> None:
        issued = issuer.issue(secrets.token_bytes(16))
        assert issued.token.startswith("SSC1:")
        message = cbor2.loads(cose_bytes(issued.token))
        assert message.tag == 18
        protected, unprotected, payload, signature = message.value
        assert cbor2.loads(protected) == {1: -7, 4: issued.kid}
        assert unprotected == {}
        assert len(signature) == 64
        claims = cbor2.loads(payload)
        assert set(claims) == {1, 4, 6, 7, CLAIM_SEALED_HANDLE}
        assert claims[7] == issued.cti

    def test_signature_covers_the_rfc_9052_sig_structure(self, issuer: TokenIssuer) -> None:
        decoded = decode_token(issuer.issue(secrets.token_bytes(16)).token)
        assert decoded.signed_bytes() == cbor2.dumps(
            ["Signature1", decoded.protected, b"", decoded.payload]
        )

    def test_encoding_is_deterministic_cbor(self, issuer: TokenIssuer) -> None:
        decoded = decode_token(issuer.issue(secrets.token_bytes(16), status_index=7).token)
        assert decoded.payload == cbor2.dumps(cbor2.loads(decoded.payload), canonical=True)


class TestBudget:
    """Version 8 at M holds 221 alphanumeric characters; docs/token-spec.md, issue 5."""

    @staticmethod
    def qr_version(token: str) -> int:
        version = segno.make(token, error="m", boost_error=False).version
        assert isinstance(version, int)
        return version

    @pytest.mark.parametrize("not_before_offset", [None, 30], ids=["plain", "prefetched"])
    def test_without_status_index_fits_220_characters(
        self, issuer: TokenIssuer, not_before_offset: int | None
    ) -> None:
        not_before = None if not_before_offset is None else int(START) + not_before_offset
        token = issuer.issue(secrets.token_bytes(16), not_before=not_before).token
        assert len(token) <= 220
        assert self.qr_version(token) <= 8

    @pytest.mark.parametrize("not_before_offset", [None, 30], ids=["plain", "prefetched"])
    def test_with_the_largest_32_bit_status_index_fits_221_characters_and_version_8(
        self, issuer: TokenIssuer, not_before_offset: int | None
    ) -> None:
        not_before = None if not_before_offset is None else int(START) + not_before_offset
        token = issuer.issue(
            secrets.token_bytes(16), not_before=not_before, status_index=2**32 - 1
        ).token
        assert len(token) <= BUDGET_CHARS == 221
        assert self.qr_version(token) <= 8

    def test_one_character_more_would_need_version_9(self, issuer: TokenIssuer) -> None:
        token = issuer.issue(secrets.token_bytes(16), status_index=2**32 - 1).token
        assert self.qr_version(token.ljust(BUDGET_CHARS + 1, "0")) == 9

    def test_a_prefetched_token_carries_its_start_in_iat_and_no_nbf(
        self, issuer: TokenIssuer
    ) -> None:
        issued = issuer.issue(bytes(16), not_before=int(START) + 30, status_index=7)
        claims = cbor2.loads(cbor2.loads(cose_bytes(issued.token)).value[2])
        assert 5 not in claims
        assert (claims[6], claims[4]) == (int(START) + 30, int(START) + 90)

    def test_a_status_index_beyond_32_bits_is_refused_at_issue(self, issuer: TokenIssuer) -> None:
        with pytest.raises(TokenBudgetError, match="227 characters"):
            issuer.issue(secrets.token_bytes(16), status_index=2**32)

    def test_stays_in_the_qr_alphanumeric_set(self, issuer: TokenIssuer) -> None:
        token = issuer.issue(secrets.token_bytes(16)).token
        assert segno.make(token, error="m", boost_error=False).mode == "alphanumeric"


class TestNoPersonalData:
    CARD_NUMBER = "360102199001011234"
    NAME = "张三"

    def test_token_holds_no_card_number_name_or_handle(
        self, ring: KeyRing, handle_key: bytes, clock: FakeClock
    ) -> None:
        # Even a careless handle made of the card number stays hidden: it is encrypted.
        handle = self.CARD_NUMBER.encode()[:16]
        token = TokenIssuer(ring, ISSUER, handle_key, clock=clock).issue(handle).token
        raw = cose_bytes(token)
        for secret in (self.CARD_NUMBER.encode(), self.NAME.encode(), handle, handle[:8]):
            assert secret not in raw
        assert self.CARD_NUMBER not in token
        assert self.NAME not in token

    def test_two_tokens_of_one_card_do_not_share_the_sealed_handle(
        self, issuer: TokenIssuer
    ) -> None:
        handle = secrets.token_bytes(16)
        first, second = (decode_token(issuer.issue(handle).token).claims for _ in range(2))
        assert first.cti != second.cti
        assert first.sealed_handle != second.sealed_handle
        assert handle not in cose_bytes(issuer.issue(handle).token)
        positions_equal = sum(
            a == b for a, b in zip(first.sealed_handle, second.sealed_handle, strict=True)
        )
        assert positions_equal < 8  # independent keystreams; 8 equal bytes has odds ~2**-50

    @pytest.mark.parametrize("key_length", [16, 32])
    def test_handle_sealing_is_standard_aes_ctr_with_cti_as_nonce(self, key_length: int) -> None:
        key, handle, cti = (secrets.token_bytes(n) for n in (key_length, 16, 8))
        reference = Cipher(algorithms.AES(key), modes.CTR(cti + bytes(8))).encryptor()
        sealed = HandleCipher(key).seal(handle, cti)
        assert sealed == reference.update(handle)
        assert HandleCipher(key).open(sealed, cti) == handle

    def test_handle_keys_are_16_or_32_bytes(self) -> None:
        with pytest.raises(ValueError, match="16 or 32"):
            HandleCipher(bytes(24))


def payload_with(claim: int, value: object) -> bytes:
    return cbor2.dumps({**claims_map(), claim: value})


def payload_plus(raw_entry: bytes, *, without: int | None = None) -> bytes:
    """Claims (less one) with a hand-encoded extra entry, for shapes cbor2 will not produce."""
    encoded = cbor2.dumps({k: v for k, v in claims_map().items() if k != without})
    return bytes((encoded[0] + 1,)) + encoded[1:] + raw_entry


IAT = (1_750_000_000).to_bytes(4, "big")


class TestStrictDecoding:
    """Every shape outside the profile is malformed, even when validly signed."""

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "SSC1:",
            "SSC2:BB8",
            "ssc1:BB8",
            "SSC1:bb8",
            "SSC1:A",
            "SSC1:GGW",
            "SSC1:" + "0" * 600,
            "SSC1:\u00e9\u00e9\u00e9",
        ],
        ids=lambda token: repr(token[:12]),
    )
    def test_rejects_bad_text(self, token: str) -> None:
        with pytest.raises(MalformedTokenError):
            decode_token(token)

    def test_rejects_input_over_512_characters_before_decoding(self, issuer: TokenIssuer) -> None:
        token = issuer.issue(secrets.token_bytes(16)).token
        with pytest.raises(MalformedTokenError, match="512"):
            decode_token(token + "0" * (513 - len(token)))

    @pytest.mark.parametrize(
        "change",
        [
            lambda data: data + b"\x00",
            lambda data: data[:-1],
            lambda data: data[: len(data) // 2],
            lambda data: data[:3],
            lambda data: b"\xd3" + data[1:],
        ],
        ids=["trailing-byte", "cut-last-byte", "cut-half", "cut-to-header", "other-tag"],
    )
    def test_rejects_broken_structure(self, issuer: TokenIssuer, change: object) -> None:
        token = issuer.issue(secrets.token_bytes(16)).token
        with pytest.raises(MalformedTokenError):
            decode_token(rewrap(token, change))  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("protected", "unprotected", "tag"),
        [
            ({1: -35}, None, 18),  # ES384
            ({1: -8}, None, 18),  # EdDSA
            ({1: -7, 3: "x"}, None, 18),  # an extra protected header
            ({1: -7}, {5: b"iv"}, 18),  # a non-empty unprotected header
            ({1: -7}, None, None),  # untagged
            ({1: -7}, None, 98),  # COSE_Sign, not COSE_Sign1
        ],
        ids=["es384", "eddsa", "extra-header", "unprotected", "untagged", "cose-sign"],
    )
    def test_rejects_other_headers(
        self,
        ring: KeyRing,
        protected: dict[int, object],
        unprotected: dict[int, object] | None,
        tag: int | None,
    ) -> None:
        header = cbor2.dumps({**protected, 4: ring.signing_key.kid})
        token = forge(
            ring, cbor2.dumps(claims_map()), protected=header, unprotected=unprotected, tag=tag
        )
        with pytest.raises(MalformedTokenError):
            decode_token(token)

    @pytest.mark.parametrize(
        "payload",
        [
            payload_with(8, b"cnf"),  # unknown claim
            payload_with(6, "1750000000"),  # iat as text
            payload_with(6, -1),  # negative time
            payload_with(4, 1_750_000_060.5),  # float time
            payload_with(7, b"1234567"),  # cti of 7 bytes
            payload_with(-65001, bytes(15)),  # short sealed handle
            payload_with(1, ""),  # empty issuer
            payload_with(1, b"360000"),  # issuer as bytes
            payload_with(-65002, -3),  # negative status index
            cbor2.dumps({k: v for k, v in claims_map().items() if k != 4}),  # no exp
            cbor2.dumps(claims_map()) + b"\x00",  # trailing byte after the claims
            payload_plus(b"\x06\x1a" + IAT),  # duplicate iat
            b"\xbf" + cbor2.dumps(claims_map())[1:] + b"\xff",  # indefinite-length map
            cbor2.dumps(list(claims_map().items())),  # an array, not a map
            payload_plus(b"\x06\x1b" + bytes(4) + IAT, without=6),  # 8-byte head, 4-byte int
            b"",
        ],
        ids=[
            "unknown-claim",
            "iat-text",
            "negative-time",
            "float-time",
            "short-cti",
            "short-handle",
            "empty-issuer",
            "issuer-bytes",
            "negative-index",
            "missing-exp",
            "trailing",
            "duplicate",
            "indefinite",
            "array",
            "non-preferred",
            "empty",
        ],
    )
    def test_rejects_unexpected_claims(self, ring: KeyRing, payload: bytes) -> None:
        with pytest.raises(MalformedTokenError):
            decode_token(forge(ring, payload))

    def test_hand_encoded_entries_are_accepted_when_well_formed(self, ring: KeyRing) -> None:
        decoded = decode_token(forge(ring, payload_plus(b"\x06\x1a" + IAT, without=6)))
        assert decoded.claims.issued_at == 1_750_000_000

    def test_accepts_claims_in_any_order(self, ring: KeyRing) -> None:
        claims = claims_map()
        reordered = dict(reversed(list(claims.items())))
        decoded = decode_token(forge(ring, cbor2.dumps(reordered)))
        assert decoded.claims.cti == claims[7]

    def test_an_nbf_claim_of_an_older_issuer_is_still_decoded(self, ring: KeyRing) -> None:
        claims = claims_map()
        claims[5] = int(START) + 30
        assert decode_token(forge(ring, cbor2.dumps(claims))).claims.not_before == int(START) + 30

    def test_status_index_claim_round_trips(self, ring: KeyRing) -> None:
        claims = claims_map()
        claims[CLAIM_STATUS_INDEX] = 70_000
        assert decode_token(forge(ring, cbor2.dumps(claims))).claims.status_index == 70_000

    def test_well_formed_base45_of_random_bytes(self) -> None:
        with pytest.raises(MalformedTokenError):
            decode_token("SSC1:" + b45encode(secrets.token_bytes(140)))
