"""Writes the SSC1 test vectors of docs/token-spec.md to docs/test-vectors/ssc1-vectors.json.

    .venv/bin/python docs/test-vectors/generate.py

Everything but the ECDSA signatures is fixed: keys (derived from fixed labels), times, cti
values, card handles, the status list. ECDSA signatures are randomised, so a second run
writes other token strings (equally valid); the committed file is the reference, and
tests/token_service/test_vectors.py checks every vector in it against the code. Do not
regenerate it for the sake of it.

The keys here are TEST KEYS, published with their private part. Never trust them anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from token_service import (
    Claims,
    PublicKeySet,
    SigningKey,
    Status,
    StatusList,
    TrustedIssuer,
    build_bundle,
    key_id,
    sign_status_list_cwt,
)
from token_service._base45 import b45decode, b45encode
from token_service.codec import P256_ORDER, PREFIX, HandleCipher, sign_token
from token_service.key_set import jwk_of

OUTPUT = Path(__file__).with_name("ssc1-vectors.json")

ISSUER = "360000"
ISSUER_NAME = "Test issuer (test vectors only)"
LIFETIME = 60
CLOCK_SKEW = 5
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z: iat of the vector tokens
HANDLE_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
STATUS_LIST_URI = "https://ssc.example/v1/status-lists/360000"
STATUS_LIST_SIZE = 1024
BUNDLE_ISSUED_AT = T0 - 600
BUNDLE_MAX_AGE = 86_400
SCANNER = "scanner-test-vectors"
SCENES = ("library", "metro")

# Cards: (label, card handle, status index, status in the list).
CARDS = {
    "active": (bytes.fromhex("a0" * 16), 17, Status.VALID),
    "cancelled": (bytes.fromhex("c0" * 16), 42, Status.INVALID),
    "suspended": (bytes.fromhex("50" * 16), 77, Status.SUSPENDED),
    "lost": (bytes.fromhex("10" * 16), 99, Status.LOST),
}


def test_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key whose scalar is SHA-256 of the label (reduced mod n): fixed, and public."""
    scalar = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % P256_ORDER
    return ec.derive_private_key(scalar, ec.SECP256R1())


def private_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The JWK of the key with its private scalar `d` (test keys only)."""
    public_key = private_key.public_key()
    jwk = jwk_of(key_id(public_key), public_key)
    scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
    return {**jwk, "d": base64.urlsafe_b64encode(scalar).rstrip(b"=").decode()}


@dataclass(frozen=True)
class FixedRing:
    """What the document signers use of a `KeyRing`: its active key."""

    signing_key: SigningKey


ISSUER_KEY = test_key("SSC1 test vector issuer key")
OTHER_KEY = test_key("SSC1 test vector key nobody publishes")


def token(
    *,
    card: str = "active",
    cti: bytes,
    key: ec.EllipticCurvePrivateKey = ISSUER_KEY,
    issued_at: int = T0,
    with_status_index: bool = True,
) -> str:
    handle, index, _ = CARDS[card]
    claims = Claims(
        issuer=ISSUER,
        issued_at=issued_at,
        expires_at=issued_at + LIFETIME,
        cti=cti,
        sealed_handle=HandleCipher(HANDLE_KEY).seal(handle, cti),
        status_index=index if with_status_index else None,
    )
    return sign_token(claims, key_id(key.public_key()), key)


def cose(token_text: str) -> bytearray:
    return bytearray(b45decode(token_text.removeprefix(PREFIX)))


def high_s_twin(token_text: str) -> str:
    """The same token with the signature's s replaced by n - s (verifies as plain ECDSA)."""
    data = cose(token_text)
    s = int.from_bytes(data[-32:], "big")
    data[-32:] = (P256_ORDER - s).to_bytes(32, "big")
    return PREFIX + b45encode(bytes(data))


def tampered(token_text: str) -> str:
    """The same token with one claim byte changed after signing (exp one second later)."""
    data = cose(token_text)
    claims_exp = bytes((0x04, 0x1A)) + (T0 + LIFETIME).to_bytes(4, "big")
    at = bytes(data).index(claims_exp) + 2
    data[at : at + 4] = (T0 + LIFETIME + 1).to_bytes(4, "big")
    return PREFIX + b45encode(bytes(data))


def online(
    name: str, description: str, token_text: str, verify_at: int, verdict: str, **expect: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "token": token_text,
        "verify_at": verify_at,
        "expected": {"verdict": verdict, **expect},
    }


def main() -> None:
    valid = token(cti=bytes.fromhex("0102030405060708"))
    issuer_jwk = private_jwk(ISSUER_KEY)
    handle, index, _ = CARDS["active"]
    claims_of_valid = {
        "kid": issuer_jwk["kid"],
        "iss": ISSUER,
        "iat": T0,
        "exp": T0 + LIFETIME,
        "cti": "0102030405060708",
        "status_index": index,
        "card_handle": handle.hex(),
    }
    token_vectors = [
        online(
            "valid",
            "A fresh token, read 10 s after iat.",
            valid,
            T0 + 10,
            "valid",
            **claims_of_valid,
        ),
        online(
            "valid_at_exp_plus_skew",
            "Still valid at exp + clock skew (5 s).",
            valid,
            T0 + LIFETIME + CLOCK_SKEW,
            "valid",
            **claims_of_valid,
        ),
        online(
            "expired",
            "Read one second after exp + clock skew.",
            valid,
            T0 + LIFETIME + CLOCK_SKEW + 1,
            "expired",
        ),
        online(
            "valid_at_iat_minus_skew",
            "Valid from iat - clock skew.",
            valid,
            T0 - CLOCK_SKEW,
            "valid",
            **claims_of_valid,
        ),
        online(
            "not_yet_valid",
            "Read one second before iat - clock skew (a prefetched token).",
            valid,
            T0 - CLOCK_SKEW - 1,
            "not_yet_valid",
        ),
        online(
            "bad_signature",
            "exp changed by one second after signing.",
            tampered(valid),
            T0 + 10,
            "bad_signature",
        ),
        online(
            "bad_signature_high_s",
            "The high-S twin (r, n - s) of the valid token's "
            "signature: valid plain ECDSA, refused by the profile.",
            high_s_twin(valid),
            T0 + 10,
            "bad_signature",
        ),
        online(
            "unknown_key",
            "Well formed, signed by a key that is in no key set.",
            token(cti=bytes.fromhex("1112131415161718"), key=OTHER_KEY),
            T0 + 10,
            "unknown_key",
        ),
        online(
            "malformed_prefix",
            "Lower-case prefix.",
            "ssc1:" + valid[len(PREFIX) :],
            T0 + 10,
            "malformed",
        ),
        online(
            "malformed_base45",
            "A character outside the base45 alphabet.",
            valid[:-1] + "a",
            T0 + 10,
            "malformed",
        ),
    ]

    status_list = StatusList(STATUS_LIST_SIZE, bits=2)
    statuses: dict[str, str] = {}
    for _, card_index, status in CARDS.values():
        status_list.set(card_index, status)
        statuses[str(card_index)] = status.name
    ring = FixedRing(SigningKey(key_id(ISSUER_KEY.public_key()), ISSUER_KEY))
    status_list_cwt = sign_status_list_cwt(
        status_list,
        uri=STATUS_LIST_URI,
        keyring=ring,  # type: ignore[arg-type]
        issued_at=BUNDLE_ISSUED_AT,
        expires_in=BUNDLE_MAX_AGE + 300,
        ttl=300,
    )
    public_keys = PublicKeySet([(key_id(ISSUER_KEY.public_key()), ISSUER_KEY.public_key())])
    bundle = build_bundle(
        keyring=ring,  # type: ignore[arg-type]
        client_id=SCANNER,
        scenes=SCENES,
        issuers=[TrustedIssuer(ISSUER, ISSUER_NAME, public_keys, LIFETIME, STATUS_LIST_URI)],
        status_lists={ISSUER: status_list_cwt},
        issued_at=BUNDLE_ISSUED_AT,
        max_age=BUNDLE_MAX_AGE,
    )

    def scan(
        token_text: str, verdict: str, accepted: bool, scene: str | None = "metro", **extra: Any
    ) -> dict[str, Any]:
        return {
            "token": token_text,
            "scene": scene,
            "verdict": verdict,
            "accepted": accepted,
            **extra,
        }

    at = T0 + 10
    offline_vectors = [
        {
            "name": "offline_valid",
            "description": "Active card (index 17), scene in the bundle.",
            "verify_at": at,
            "scans": [scan(valid, "valid", True)],
        },
        {
            "name": "offline_replayed",
            "description": "The same token twice: the replay cache "
            "refuses the second presentation.",
            "verify_at": at,
            "scans": [scan(valid, "valid", True), scan(valid, "replayed", False)],
        },
        {
            "name": "revoked",
            "description": "A genuine token of a card the status list marks "
            "INVALID (cancelled or replaced, index 42).",
            "verify_at": at,
            "scans": [
                scan(
                    token(card="cancelled", cti=bytes.fromhex("2122232425262728")),
                    "card_cancelled",
                    False,
                )
            ],
        },
        {
            "name": "suspended",
            "description": "Status SUSPENDED (index 77).",
            "verify_at": at,
            "scans": [
                scan(
                    token(card="suspended", cti=bytes.fromhex("3132333435363738")),
                    "card_suspended",
                    False,
                )
            ],
        },
        {
            "name": "lost",
            "description": "Status LOST (index 99).",
            "verify_at": at,
            "scans": [
                scan(token(card="lost", cti=bytes.fromhex("4142434445464748")), "card_lost", False)
            ],
        },
        {
            "name": "status_index_missing",
            "description": "No status index although the issuer publishes a status list.",
            "verify_at": at,
            "scans": [
                scan(
                    token(cti=bytes.fromhex("5152535455565758"), with_status_index=False),
                    "malformed",
                    False,
                    reason="status_index_missing",
                )
            ],
        },
        {
            "name": "scene_not_allowed",
            "description": "A scene the bundle does not list.",
            "verify_at": at,
            "scans": [scan(valid, "scene_not_allowed", False, scene="hotel")],
        },
        {
            "name": "stale_bundle",
            "description": "Valid token, bundle older than max_age: "
            "the verdict is valid, but nobody is admitted.",
            "verify_at": BUNDLE_ISSUED_AT + BUNDLE_MAX_AGE + 1,
            "scans": [
                scan(
                    token(
                        cti=bytes.fromhex("6162636465666768"),
                        issued_at=BUNDLE_ISSUED_AT + BUNDLE_MAX_AGE,
                    ),
                    "valid",
                    False,
                    stale=True,
                )
            ],
        },
    ]

    document = {
        "about": "SSC1 test vectors (docs/token-spec.md, section Test vectors). TEST KEYS: "
        "the private key is published; trust it nowhere. Generated by "
        "docs/test-vectors/generate.py, checked by tests/token_service/test_vectors.py.",
        "issuer": ISSUER,
        "issuer_key": issuer_jwk,
        "unknown_key": private_jwk(OTHER_KEY),
        "handle_key": HANDLE_KEY.hex(),
        "token_lifetime": LIFETIME,
        "clock_skew": CLOCK_SKEW,
        "tokens": token_vectors,
        "status_list": {
            "uri": STATUS_LIST_URI,
            "bits": 2,
            "size": STATUS_LIST_SIZE,
            "entries": statuses,
            "cwt": base64.b64encode(status_list_cwt).decode(),
            "verify_at": T0 + 10,
        },
        "bundle": {
            "client_id": SCANNER,
            "scenes": list(SCENES),
            "issued_at": BUNDLE_ISSUED_AT,
            "max_age": BUNDLE_MAX_AGE,
            "cwt": base64.b64encode(bundle.data).decode(),
            "anchor_jwks": {"keys": [{k: v for k, v in issuer_jwk.items() if k != "d"}]},
        },
        "offline": offline_vectors,
    }
    OUTPUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
