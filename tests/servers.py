"""Real `ssc serve` processes for tests that need the service over HTTP (fuzzing, several
workers): started on a free loopback port, waited for, and their stderr shown on failure."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SSC = Path(sys.executable).with_name("ssc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SSC, "serve", "--port", str(port)],
        env={**env, "SSC_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"server did not start: {stderr[-2000:]}")
        time.sleep(0.2)
