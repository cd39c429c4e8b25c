"""Benchmark: `TokenVerifier.verify` against raw ES256 verification, on one core.

Run: `.venv/bin/python load/bench_token.py` (LOAD_TOKENS sets the token count, default 20000).
Prints raw ES256 verifications/s with `cryptography` (precomputed DER signature and message),
our verify on distinct fresh tokens per second, and their ratio. Both loops run in this one
process, interleaved in rounds so that frequency scaling and noise hit both alike.
"""

from __future__ import annotations

import os
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from token_service import KeyDirectory, KeyRing, TokenIssuer, TokenVerifier, Verdict
from token_service.codec import decode_token

ISSUER = "360000"
ROUNDS = 5


def main() -> None:
    count = int(os.environ.get("LOAD_TOKENS", "20000"))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    ring = KeyRing.ephemeral()
    handle_key = secrets.token_bytes(16)
    issuer = TokenIssuer(ring, ISSUER, handle_key, lifetime=3600)
    tokens = [issuer.issue(secrets.token_bytes(16)).token for _ in range(count)]
    verifier = TokenVerifier(KeyDirectory({ISSUER: ring}), [ISSUER], {ISSUER: handle_key})

    public_key = ring.signing_key.private_key.public_key()
    decoded = [decode_token(token) for token in tokens]
    raw_inputs = [(item.der_signature(), item.signed_bytes()) for item in decoded]
    algorithm = ec.ECDSA(hashes.SHA256())

    raw_seconds = ours_seconds = 0.0
    per_round = count // ROUNDS
    for round_number in range(ROUNDS):
        chunk = slice(round_number * per_round, (round_number + 1) * per_round)
        started = time.perf_counter()
        for signature, message in raw_inputs[chunk]:
            public_key.verify(signature, message, algorithm)
        raw_seconds += time.perf_counter() - started

        started = time.perf_counter()
        for token in tokens[chunk]:
            if verifier.verify(token).verdict is not Verdict.VALID:
                raise SystemExit("benchmark token did not verify")
        ours_seconds += time.perf_counter() - started

    measured = per_round * ROUNDS
    raw_rate = measured / raw_seconds
    ours_rate = measured / ours_seconds
    print(f"tokens measured:              {measured}")
    print(f"raw ES256 verify (cryptography): {raw_rate:10.0f} /s  {1e6 / raw_rate:6.1f} us each")
    print(f"TokenVerifier.verify:            {ours_rate:10.0f} /s  {1e6 / ours_rate:6.1f} us each")
    print(f"ratio ours / raw:                {ours_rate / raw_rate:10.1%}")


if __name__ == "__main__":
    main()
