"""The image's health check asks the port the API listens on (SSC_PORT), not a fixed one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.servers import free_port

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"


def health_check_command() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command = line.partition(" CMD ")[2].strip()
    assert command and not command.startswith("["), "a shell-form CMD (it reads SSC_PORT)"
    return command.replace("python ", f"{sys.executable} ", 1)


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_port() -> Iterator[int]:
    """A stand-in for the API answering /healthz on a port that is not 8000."""
    server = HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_health_check(port: int) -> int:
    env = {**os.environ, "SSC_PORT": str(port)}
    finished = subprocess.run(
        ["sh", "-c", health_check_command()],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return finished.returncode


def test_the_health_check_asks_the_configured_port(api_port: int) -> None:
    assert api_port != 8000
    assert run_health_check(api_port) == 0


def test_the_health_check_fails_when_nothing_answers_there() -> None:
    assert run_health_check(free_port()) != 0
