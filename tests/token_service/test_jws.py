"""Issuers' signed documents: JWS compact over RFC 8785 canonical JSON."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, OKPKey

from token_service.jws import (
    JwsError,
    canonicalize,
    jwk_thumbprint,
    parse_jwk,
    public_jwk,
    sign_document,
    verify_document,
)

DOCUMENT = {"type": "driving_licence", "number": "360102199001011234", "version": 1, "b": True}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestCanonicalisation:
    def test_rfc8785_section_3_2_3_example_sorts_by_utf16_code_units(self) -> None:
        # RFC 8785 section 3.2.3: property sorting by UTF-16 code units.
        value = {
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\U0001f600": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        }
        expected = (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small '
            'Letter O With Diaeresis","\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning '
            'Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        )
        assert canonicalize(value) == expected.encode()

    def test_rfc8785_section_3_2_2_example_numbers_and_strings(self) -> None:
        value = {
            "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
            "literals": [None, True, False],
        }
        expected = (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        )
        assert canonicalize(value) == expected.encode()

    def test_an_integer_json_cannot_carry_exactly_is_refused(self) -> None:
        with pytest.raises(JwsError) as raised:
            canonicalize({"n": 2**60})
        assert raised.value.code == "malformed"


class TestIndependentVerification:
    """A standard JOSE library (joserfc) verifies what `sign_document` signs, and we verify
    what it signs: the format is plain JWS, not ours."""

    def test_joserfc_verifies_our_es256_signature(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        token = sign_document(DOCUMENT, key, "k1")
        verifier = ECKey.import_key(public_jwk(key, "k1"))  # type: ignore[arg-type]
        verified = joserfc_jws.deserialize_compact(token, verifier, algorithms=["ES256"])
        assert json.loads(verified.payload) == DOCUMENT
        assert verified.payload == canonicalize(DOCUMENT)

    @pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
    def test_joserfc_verifies_our_eddsa_signature(self) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        token = sign_document(DOCUMENT, key, "k1")
        verifier = OKPKey.import_key(public_jwk(key, "k1"))  # type: ignore[arg-type]
        verified = joserfc_jws.deserialize_compact(token, verifier, algorithms=["EdDSA"])
        assert json.loads(verified.payload) == DOCUMENT

    def test_we_verify_a_joserfc_ed25519_signature_under_its_rfc9864_name(self) -> None:
        signer = OKPKey.generate_key("Ed25519", parameters={"kid": "dept-2"})
        token = joserfc_jws.serialize_compact(
            {"alg": "Ed25519", "kid": "dept-2"},
            canonicalize(DOCUMENT),
            signer,
            algorithms=["Ed25519"],
        )
        keys = {"dept-2": parse_jwk(signer.as_dict(private=False))}
        assert verify_document(token, keys).payload == DOCUMENT

    def test_we_verify_a_joserfc_signature_over_the_canonical_form(self) -> None:
        signer = ECKey.generate_key("P-256", parameters={"kid": "dept-1"})
        token = joserfc_jws.serialize_compact(
            {"alg": "ES256", "kid": "dept-1"}, canonicalize(DOCUMENT), signer
        )
        keys = {"dept-1": parse_jwk(signer.as_dict(private=False))}
        assert verify_document(token, keys).payload == DOCUMENT

    def test_a_joserfc_signature_over_non_canonical_json_is_refused(self) -> None:
        signer = ECKey.generate_key("P-256", parameters={"kid": "dept-1"})
        token = joserfc_jws.serialize_compact(
            {"alg": "ES256", "kid": "dept-1"}, json.dumps(DOCUMENT).encode(), signer
        )
        keys = {"dept-1": parse_jwk(signer.as_dict(private=False))}
        with pytest.raises(JwsError) as raised:
            verify_document(token, keys)
        assert raised.value.code == "not_canonical"


class TestRefusals:
    def setup_method(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.keys = {"k1": parse_jwk(public_jwk(self.key, "k1"))}
        self.token = sign_document(DOCUMENT, self.key, "k1")

    def _code(self, token: str) -> str:
        with pytest.raises(JwsError) as raised:
            verify_document(token, self.keys)
        return raised.value.code

    def test_the_genuine_document_verifies(self) -> None:
        assert verify_document(self.token, self.keys).payload == DOCUMENT

    def test_a_changed_payload_is_a_bad_signature(self) -> None:
        header, _, signature = self.token.split(".")
        forged = canonicalize({**DOCUMENT, "number": "X"})
        assert self._code(f"{header}.{_b64(forged)}.{signature}") == "bad_signature"

    def test_a_changed_signature_is_a_bad_signature(self) -> None:
        header, payload, signature = self.token.split(".")
        flipped = "A" if signature[0] != "A" else "B"
        assert self._code(f"{header}.{payload}.{flipped}{signature[1:]}") == "bad_signature"

    def test_another_key_is_unknown(self) -> None:
        other = ec.generate_private_key(ec.SECP256R1())
        assert self._code(sign_document(DOCUMENT, other, "k2")) == "unknown_key"

    def test_another_key_under_a_known_kid_is_a_bad_signature(self) -> None:
        other = ec.generate_private_key(ec.SECP256R1())
        assert self._code(sign_document(DOCUMENT, other, "k1")) == "bad_signature"

    @pytest.mark.parametrize("alg", ["none", "HS256", "RS256"])
    def test_other_algorithms_are_refused(self, alg: str) -> None:
        header = _b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
        token = f"{header}.{_b64(canonicalize(DOCUMENT))}."
        assert self._code(token) == "algorithm_not_allowed"

    @pytest.mark.parametrize(
        "token", ["", "a.b", "a.b.c.d", "!!!.e30.", "x" * 40000, "eyJhbGc.e30."]
    )
    def test_garbage_is_malformed(self, token: str) -> None:
        assert self._code(token) == "malformed"

    def test_critical_extensions_are_refused(self) -> None:
        header = _b64(json.dumps({"alg": "ES256", "kid": "k1", "crit": ["exp"]}).encode())
        assert self._code(f"{header}.{_b64(canonicalize(DOCUMENT))}.AAAA") == "malformed"


class TestKeys:
    def test_a_private_jwk_is_refused(self) -> None:
        private = ECKey.generate_key("P-256").as_dict(private=True)
        with pytest.raises(JwsError) as raised:
            parse_jwk(private)
        assert raised.value.code == "invalid_jwk"

    @pytest.mark.parametrize(
        "jwk",
        [
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "x": "A" * 43},
            {"kty": "OKP", "crv": "X25519", "x": "A" * 43},
            {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "alg": "ES256"},
        ],
    )
    def test_other_keys_are_refused(self, jwk: dict[str, str]) -> None:
        with pytest.raises(JwsError) as raised:
            parse_jwk(jwk)
        assert raised.value.code == "invalid_jwk"

    def test_the_default_kid_is_the_rfc7638_thumbprint(self) -> None:
        # RFC 7638 section 3.1 computes over an RSA key; the method is the same for EC: check
        # it against joserfc's own thumbprint.
        key = ECKey.generate_key("P-256")
        public = key.as_dict(private=False)
        public.pop("kid", None)
        assert parse_jwk(public).kid == key.thumbprint() == jwk_thumbprint(public)
