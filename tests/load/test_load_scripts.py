"""Smoke checks of the load scripts: they load and list their scenarios. Locust runs in a
subprocess only (it monkey-patches with gevent); speed is never asserted here."""

import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"


class TestLocustfile:
    @pytest.mark.skipif(not LOCUST.exists(), reason="locust is not installed")
    def test_lists_every_scenario(self) -> None:
        listed = subprocess.run(
            [str(LOCUST), "-f", str(ROOT / "load" / "locustfile.py"), "--list"],
            capture_output=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": str(LOCUST.parent)},
            check=True,
            timeout=60,
        )
        names = set(listed.stdout.decode().split())
        assert {"GateStorm", "PhoneRefresh", "Mixed", "ReplayAttack", "VerifyAtRate"} <= names


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


class TestWrkScript:
    @pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
    def test_posts_the_bodies_of_its_file_in_turn(self, tmp_path: Path) -> None:
        bodies = tmp_path / "bodies.jsonl"
        bodies.write_text('{"token": "a"}\n{"token": "b"}\n')
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/verify"
        try:
            done = subprocess.run(
                ["wrk", "-t", "1", "-c", "1", "-d", "1s", "-s",
                 str(ROOT / "load" / "wrk_bodies.lua"), url, "--", str(bodies), "1"],
                capture_output=True,
                timeout=30,
                check=True,
            )  # fmt: skip
        finally:
            server.shutdown()
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        assert summary["requests"] > 2
        assert set(_Recorder.bodies) == {b'{"token": "a"}', b'{"token": "b"}'}
