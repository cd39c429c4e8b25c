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

from load import latency

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


class _KeepAliveAnswerer(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1: 200 with a Content-Length body, 503 for a body `"fail"`, and a
    chunked answer for a body `"chunked"`."""

    protocol_version = "HTTP/1.1"
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append(body)
        if body == b'"chunked"':
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")
            return
        answer = b'{"verdict": "valid"}'
        self.send_response(503 if body == b'"fail"' else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        return


class TestOpenLoopGenerator:
    def run(self, bodies: list[bytes], rate: float = 200.0) -> latency.LatencyResult:
        _KeepAliveAnswerer.bodies = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveAnswerer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            return latency.run(
                f"http://127.0.0.1:{server.server_address[1]}/v1/verify",
                bodies,
                {"Authorization": "Bearer scanner"},
                rate=rate,
                seconds=0.5,
                connections=4,
                poisson=False,
            )
        finally:
            server.shutdown()

    def test_sends_each_scheduled_body_once_on_keep_alive_connections(self) -> None:
        bodies = [b'{"token": "%d"}' % number for number in range(200)]
        result = self.run(bodies)
        scheduled = len(latency.schedule(200.0, 0.5, poisson=False))
        assert result.sent == result.answered == scheduled
        assert sorted(_KeepAliveAnswerer.bodies) == sorted(bodies[:scheduled])
        assert result.errors == 0
        assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms

    def test_counts_error_statuses_and_reads_chunked_answers(self) -> None:
        bodies = [b'"fail"', b'"chunked"', b'"fail"'] + [b"{}"] * 200
        result = self.run(bodies)
        assert result.errors == 2
        assert result.answered == result.sent

    def test_refuses_a_schedule_longer_than_its_bodies(self) -> None:
        with pytest.raises(ValueError, match="bodies"):
            latency.run("http://127.0.0.1:9/", [b"{}"], {}, rate=100.0, seconds=1.0)


class TestArrivalSchedule:
    def test_constant_gaps_give_the_rate(self) -> None:
        times = latency.schedule(100.0, 2.0, poisson=False)
        assert len(times) == 199
        assert times[1] - times[0] == pytest.approx(0.01)

    def test_poisson_arrivals_are_reproducible_and_within_the_run(self) -> None:
        times = latency.schedule(500.0, 2.0, poisson=True)
        assert times == latency.schedule(500.0, 2.0, poisson=True)
        assert times == sorted(times) and times[0] > 0 and times[-1] < 2.0
        assert 800 < len(times) < 1200

    def test_each_request_carries_its_own_body_and_length(self) -> None:
        first, second = latency.encode_requests("h:1", "/v1/verify", {"X": "y"}, [b"ab", b"cde"])
        assert first.startswith(b"POST /v1/verify HTTP/1.1\r\nHost: h:1\r\n")
        assert b"X: y\r\n" in first
        assert first.endswith(b"Content-Length: 2\r\n\r\nab")
        assert second.endswith(b"Content-Length: 3\r\n\r\ncde")
