"""Vault: streaming memory. Does a 50 MB document pass through the API without the process
holding it? Measured against a live server (`ssc serve`, one worker, SQLite, its own Redis,
the local blob directory), as the API's resident set size (VmRSS of the server's process
tree, sampled every 10 ms) before and during a streaming upload and a streaming download.

    .venv/bin/python -m load.vault_memory [--megabytes 50] [--write]

`--write` appends (or replaces) the section "Vault: streaming memory" of load/RESULTS.md.
The client streams too (a generator body up, `iter_bytes` down), so the figure is the
server's alone. Pass: the download's peak stays within +20 MB of the resident set before it.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from app.cards.documents import mod11_2_check_character
from app.config import load_settings
from app.security.tokens import AccessTokenCodec, PrincipalKind
from load.results_file import write_section
from load.servers import Stack, process_tree
from token_service.jws import public_jwk, sign_document

CHUNK = 1 << 20
SECTION = "## Vault: streaming memory"
LIMIT_MB = 20.0


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its descendants (the uvicorn worker)."""
    total = 0
    for process in process_tree(pid):
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            total += int(found.group(1)) * 1024
    return total


class Sampler:
    """Samples the RSS of a process tree in a thread until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def content(size: int, seed: bytes) -> Iterator[bytes]:
    """A deterministic PDF-looking file of `size` bytes, in 1 MiB pieces (never whole)."""
    yield b"%PDF-1.7\n"
    produced, counter = 9, 0
    while produced < size:
        block = hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(
            min(CHUNK, size - produced)
        )
        counter += 1
        produced += len(block)
        yield block


def resident_id() -> str:
    born = date(1970, 1, 1) + timedelta(days=secrets.randbelow(30 * 365))
    body = f"360102{born:%Y%m%d}{secrets.randbelow(1000):03d}"
    return body + mod11_2_check_character(body)


def setup(
    base: str, stack: Stack
) -> tuple[dict[str, str], dict[str, str], str, ec.EllipticCurvePrivateKey]:
    """An HR issuer with a key and token, and an activated holder; returns (issuer headers,
    holder headers, the holder's document number, the issuer's signing key)."""
    var = stack.root / "var"
    settings = load_settings(
        environment="development", var_dir=var, key_dir=var / "keys", redis_url=None
    )
    codec = AccessTokenCodec(settings.secret("token_secret"), f"ssc:{settings.issuer}")
    admin = {
        "Authorization": "Bearer "
        + codec.issue(PrincipalKind.admin, "adm_load", ["admin"], 600).token
    }
    http = httpx.Client(base_url=base, timeout=60)
    issuer = http.post(
        "/v1/admin/issuers",
        json={"code": "360100-load", "name": "Load HR", "issued_types": ["training_certificate"]},
        headers=admin,
    ).json()
    key = ec.generate_private_key(ec.SECP256R1())
    http.post(
        f"/v1/admin/issuers/{issuer['id']}/keys",
        json={"jwk": public_jwk(key, "load-1")},
        headers=admin,
    ).raise_for_status()
    token = http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(issuer["client_ids"][0], issuer["client_secret"]),
    ).json()["access_token"]
    number = resident_id()
    applied = http.post(
        "/v1/applications",
        json={
            "document_type": "resident_id",
            "document_number": number,
            "name": "张小三",
            "phone": "13800138000",
            "bank_code": "ICBC",
        },
    ).json()
    card = http.post(f"/v1/admin/applications/{applied['id']}/approve", headers=admin).json()
    session = http.post(
        "/v1/ecard/activate",
        json={
            "card_number": card["card_number"],
            "document_number": number,
            "device_id": "load-phone",
            "pin": "284617",
        },
    ).json()
    return (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {session['access_token']}"},
        number,
        key,
    )


def measure(megabytes: int) -> dict[str, float]:
    size = megabytes * 1_000_000
    seed = secrets.token_bytes(16)
    digest = hashlib.sha256()
    for piece in content(size, seed):
        digest.update(piece)
    with Stack() as stack:
        stack.start_redis()
        api = stack.start_api()
        base = api.url
        issuer, holder, number, key = setup(base, stack)
        manifest = {
            "document_id": "load-50mb",
            "version": 1,
            "type": "training_certificate",
            "holder": {"document_type": "resident_id", "document_number": number},
            "title": "培训合格证书 (load)",
            "issued_at": datetime.now(UTC).isoformat(),
            "summary": {"institution": "Load", "course": "Streaming"},
            "content": {"type": "application/pdf", "sha256": digest.hexdigest(), "size": size},
        }
        signature = sign_document(manifest, key, "load-1")
        with httpx.Client(base_url=base, timeout=300) as http:
            warm = http.get("/v1/me/documents", headers=holder)
            warm.raise_for_status()
            time.sleep(1.0)
            before_upload = rss_bytes(api.process.pid)
            with Sampler(api.process.pid) as upload:
                pushed = http.post(
                    "/v1/documents",
                    content=content(size, seed),
                    headers={
                        **issuer,
                        "Content-Type": "application/pdf",
                        "Document-Signature": signature,
                    },
                )
            pushed.raise_for_status()
            document_id = pushed.json()["id"]
            time.sleep(1.0)
            before_download = rss_bytes(api.process.pid)
            received = hashlib.sha256()
            length = 0
            started = time.monotonic()
            with (
                Sampler(api.process.pid) as download,
                http.stream(
                    "GET", f"/v1/me/documents/{document_id}/content", headers=holder
                ) as response,
            ):
                response.raise_for_status()
                for piece in response.iter_bytes(CHUNK):
                    received.update(piece)
                    length += len(piece)
            seconds = time.monotonic() - started
        if length != size or received.hexdigest() != digest.hexdigest():
            raise SystemExit("the downloaded file differs from the uploaded one")
    mib = 1024 * 1024
    return {
        "megabytes": megabytes,
        "rss_before_upload_mib": before_upload / mib,
        "upload_peak_delta_mib": (upload.peak - before_upload) / mib,
        "rss_before_download_mib": before_download / mib,
        "download_peak_delta_mib": (download.peak - before_download) / mib,
        "download_seconds": seconds,
    }


def report(figures: dict[str, float], command: str) -> str:
    verdict = "within" if figures["download_peak_delta_mib"] <= LIMIT_MB else "OVER"
    size = f"{figures['megabytes']:.0f} MB"
    upload = (
        f"| streaming upload of {size} (`POST /v1/documents`) "
        f"| {figures['rss_before_upload_mib']:.1f} | {figures['upload_peak_delta_mib']:.1f} |"
    )
    download = (
        f"| streaming download of {size} (`GET /v1/me/documents/{{id}}/content`) "
        f"| {figures['rss_before_download_mib']:.1f} "
        f"| **{figures['download_peak_delta_mib']:.1f}** |"
    )
    return f"""{SECTION}

Command: `{command}` (measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on the shared 2-core
machine while other engineers ran tests). `ssc serve` with one worker, SQLite, its own Redis,
the local blob directory; the client streams both ways. RSS is VmRSS of the server's process
tree, sampled every 10 ms.

| step | RSS before (MiB) | peak increase (MiB) |
| --- | --- | --- |
{upload}
{download}

The download's peak is {verdict} the +{LIMIT_MB:.0f} MB budget; it took
{figures["download_seconds"]:.1f} s (decrypting 64 KiB AES-GCM chunks as they are read from
the blob file, 256 KiB at a time). The file was checked byte for byte (SHA-256) after the
download.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="write load/RESULTS.md")
    arguments = parser.parse_args()
    figures = measure(arguments.megabytes)
    command = ".venv/bin/python -m load.vault_memory" + (
        f" --megabytes {arguments.megabytes}" if arguments.megabytes != 50 else ""
    )
    text = report(figures, command + " --write")
    print(text)
    if arguments.write:
        write_section(SECTION, text)
    sys.exit(0 if figures["download_peak_delta_mib"] <= LIMIT_MB else 1)


if __name__ == "__main__":
    main()
