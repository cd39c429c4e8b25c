"""Benchmark: raw ES256 against `TokenVerifier.verify` / `verify_cose`, and the endpoint's req/s.

Run: `.venv/bin/python -m load.bench_verify` (LOAD_TOKENS: micro token count, default 20000;
LOAD_SECONDS: wrk duration, default 10). The micro part runs in this process, pinned to one
core, the loops interleaved in rounds so that frequency scaling and noise hit both alike.
The HTTP part starts Redis and one uvicorn worker of the API (`load.servers.Stack`) and
drives `POST /v1/verify` with wrk (distinct fresh tokens). `load/run_benchmarks.py` runs
all of this plus the baseline, the batch route, two workers and the latency run.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from load.servers import ROOT, Stack, write_lines
from token_service import KeyDirectory, KeyRing, TokenIssuer, TokenVerifier, Verdict
from token_service._base45 import b45decode
from token_service.codec import PREFIX, decode_token

ISSUER = "360000"
ROUNDS = 10


@dataclass(frozen=True)
class MicroResult:
    raw_per_s: float
    verify_per_s: float
    verify_cose_per_s: float


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    generator_cpu_s: float
    seconds: float


def micro(count: int) -> MicroResult:
    """Per-call rates on one core of raw ES256, `verify` (string) and `verify_cose` (bytes),
    each from its fastest of `ROUNDS` interleaved rounds over distinct tokens."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        ring = KeyRing.ephemeral()
        handle_key = secrets.token_bytes(16)
        issuer = TokenIssuer(ring, ISSUER, handle_key, lifetime=3600)
        tokens = [issuer.issue(secrets.token_bytes(16)).token for _ in range(count)]
        messages = [b45decode(token.removeprefix(PREFIX)) for token in tokens]
        verifier = TokenVerifier(KeyDirectory({ISSUER: ring}), [ISSUER], {ISSUER: handle_key})
        public_key = ring.signing_key.private_key.public_key()
        decoded = [decode_token(token) for token in tokens]
        raw_inputs = [(item.der_signature(), item.signed_bytes()) for item in decoded]
        algorithm = ec.ECDSA(hashes.SHA256())
        raw: list[float] = []
        ours: list[float] = []
        cose: list[float] = []
        per_round = count // ROUNDS
        for number in range(ROUNDS):
            chunk = slice(number * per_round, (number + 1) * per_round)
            started = time.perf_counter()
            for signature, message in raw_inputs[chunk]:
                public_key.verify(signature, message, algorithm)
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            for token in tokens[chunk]:
                if verifier.verify(token).verdict is not Verdict.VALID:
                    raise SystemExit("benchmark token did not verify")
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            for binary in messages[chunk]:
                if verifier.verify_cose(binary).verdict is not Verdict.VALID:
                    raise SystemExit("benchmark COSE did not verify")
            cose.append(time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, affinity)
    # Each variant's fastest round, as timeit advises: on a shared machine the slower rounds
    # measure the neighbours, and the three variants alternate within every round.
    return MicroResult(per_round / min(raw), per_round / min(ours), per_round / min(cose))


def raw_es256_rate(count: int = 6000) -> float:
    """Raw ES256 verifications per second, averaged over `count` (about half a second): the
    limit at the speed the machine has right now, for ratios with an HTTP run beside it."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_key = private_key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    signed = [secrets.token_bytes(150) for _ in range(count)]
    signatures = [private_key.sign(message, algorithm) for message in signed]
    started = time.perf_counter()
    for signature, message in zip(signatures, signed, strict=True):
        public_key.verify(signature, message, algorithm)
    return count / (time.perf_counter() - started)


def run_wrk(
    url: str,
    bodies: Path,
    headers: dict[str, str],
    *,
    seconds: int,
    connections: int = 32,
    threads: int = 1,
) -> WrkResult:
    """wrk against `url` with the bodies in `bodies`; also the CPU seconds wrk itself used."""
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(ROOT / "load" / "wrk_bodies.lua"), url, "--", str(bodies), str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    duration = summary["duration_us"] / 1e6
    return WrkResult(
        requests_per_s=summary["requests"] / duration,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=summary["non_2xx"] + summary["socket_errors"],
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        seconds=duration,
    )


def cose_of(token: str) -> str:
    """What a gateway forwards for a scanned token: its COSE_Sign1, base64url (the batch
    route's `cose`), which spares the server the base45 step."""
    return base64.urlsafe_b64encode(b45decode(token.removeprefix(PREFIX))).rstrip(b"=").decode()


def verify_bodies(tokens: list[str], scene: str | None = None) -> list[str]:
    """`POST /v1/verify` bodies, with `scene` when one is given."""
    extra = {} if scene is None else {"scene": scene}
    return [json.dumps({"token": token, **extra}) for token in tokens]


def main() -> None:
    count = int(os.environ.get("LOAD_TOKENS", "20000"))
    seconds = int(os.environ.get("LOAD_SECONDS", "10"))
    result = micro(count)
    print(f"raw ES256 verify (cryptography): {result.raw_per_s:10.0f} /s")
    print(f"TokenVerifier.verify:            {result.verify_per_s:10.0f} /s")
    print(f"TokenVerifier.verify_cose:       {result.verify_cose_per_s:10.0f} /s")
    print(f"ratio verify / raw:              {result.verify_per_s / result.raw_per_s:10.1%}")
    with Stack() as stack:
        stack.start_redis()
        api = stack.start_api(workers=1)
        seeded = stack.demo(api.url)
        holder, scanner = seeded["holder"], seeded["scanner"]
        assert isinstance(holder, dict) and isinstance(scanner, dict)
        tokens = stack.issue_tokens(holder["card_number"], 4000 * seconds)
        bodies = write_lines(stack.root / "verify.jsonl", verify_bodies(tokens))
        headers = {"Authorization": f"Bearer {scanner['access_token']}"}
        http = run_wrk(f"{api.url}/v1/verify", bodies, headers, seconds=seconds)
    print(
        f"POST /v1/verify, 1 uvicorn worker (wrk, 32 connections): {http.requests_per_s:.0f} "
        f"req/s, p99 {http.p99_ms:.1f} ms, errors {http.errors}"
    )


if __name__ == "__main__":
    main()
