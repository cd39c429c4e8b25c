"""`ssc serve` as deployed (a real uvicorn process): no `Server` header, the security headers
on both stacks, `X-Forwarded-*` believed only from a trusted proxy (for HSTS and for the client
address of the rate limits), and the metrics listener."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import new_secret
from tests.servers import SSC, free_port, start_server, wait_until_up


def serve(var: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var}/ssc.db",
        "SSC_REDIS_URL": "",
        "SSC_VAR_DIR": str(var),
        "SSC_KEY_DIR": str(var / "keys"),
        "SSC_KEY_ENCRYPTION_KEY": new_secret(),
        "SSC_DATA_KEY": new_secret(),
        "SSC_TOKEN_SECRET": new_secret(),
        "SSC_LOG_LEVEL": "warning",
        **{f"SSC_{name.upper()}": value for name, value in settings.items()},
    }
    subprocess.run([SSC, "migrate"], env=env, check=True, capture_output=True)
    process = start_server(env, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Served with no proxy in front."""
    yield from serve(tmp_path_factory.mktemp("direct"), rate_limit_token_per_address="2/60")


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, metrics_port: int) -> Iterator[str]:
    """Served behind a trusted proxy on this machine, with a metrics listener of its own."""
    yield from serve(
        tmp_path_factory.mktemp("proxied"),
        trusted_proxies="127.0.0.1",
        metrics_port=str(metrics_port),
        rate_limit_token_per_address="2/60",
    )


def test_no_server_header_on_any_stack(direct: str) -> None:
    answers = [
        httpx.get(f"{direct}/healthz"),
        httpx.get(f"{direct}/no/such/route"),
        httpx.post(f"{direct}/v1/verify", json={"token": "x"}),  # the verify fast path
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 401]
    for answer in answers:
        assert "server" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_forwarded_https_is_ignored_without_a_trusted_proxy(direct: str) -> None:
    for path in ("/healthz", "/v1/verify"):
        answer = httpx.request(
            "GET" if path == "/healthz" else "POST",
            f"{direct}{path}",
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "strict-transport-security" not in answer.headers


def test_hsts_when_a_trusted_proxy_says_https(proxied: str) -> None:
    for method, path in (("GET", "/healthz"), ("POST", "/v1/verify")):
        over_tls = httpx.request(method, f"{proxied}{path}", headers={"X-Forwarded-Proto": "https"})
        plain = httpx.request(method, f"{proxied}{path}", headers={"X-Forwarded-Proto": "http"})
        assert over_tls.headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" not in plain.headers


def test_metrics_are_served_on_their_own_listener_only(proxied: str, metrics_port: int) -> None:
    on_api = httpx.get(f"{proxied}/metrics")
    on_listener = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert on_api.status_code == 404
    assert on_listener.status_code == 200
    assert "ssc_http_requests_total" in on_listener.text


def token_attempt(base_url: str, forwarded_for: str) -> int:
    return httpx.post(
        f"{base_url}/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("scn_nobody", "wrong-secret"),
        headers={"X-Forwarded-For": forwarded_for},
    ).status_code


def test_forwarded_for_does_not_escape_the_limit_without_a_trusted_proxy(direct: str) -> None:
    statuses = [token_attempt(direct, f"198.51.100.{n}") for n in range(3)]
    assert statuses == [401, 401, 429]


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(proxied: str) -> None:
    assert [token_attempt(proxied, f"198.51.100.{n}") for n in range(3)] == [401, 401, 401]
    same_client = [token_attempt(proxied, "192.0.2.77") for _ in range(3)]
    assert same_client == [401, 401, 429]
