"""`ssc serve --port P` without SSC_PUBLIC_URL: the trust list it signs advertises the status
list at port P (it used to say 8000 whatever the port)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from app.config import new_secret
from tests.servers import SSC, free_port, wait_until_up


@pytest.fixture
def served_on_another_port(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("SSC_")}
    env.update(
        SSC_ENVIRONMENT="test",
        SSC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/ssc.db",
        SSC_VAR_DIR=str(tmp_path),
        SSC_KEY_DIR=str(tmp_path / "keys"),
        SSC_KEY_ENCRYPTION_KEY=new_secret(),
        SSC_DATA_KEY=new_secret(),
        SSC_TOKEN_SECRET=new_secret(),
        SSC_LOG_LEVEL="warning",
    )
    subprocess.run([SSC, "migrate"], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [SSC, "serve", "--port", str(port)],  # the port on the command line only
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        yield base_url, port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_trust_list_advertises_the_status_list_where_it_is_served(
    served_on_another_port: tuple[str, int],
) -> None:
    base_url, port = served_on_another_port
    signed = httpx.get(
        f"{base_url}/v1/trust-list", headers={"Accept": "application/trustlist+jwt"}
    ).text
    claims = jwt.decode(signed, options={"verify_signature": False})
    (own,) = claims["issuers"]
    assert own["status_list"] == f"http://127.0.0.1:{port}/v1/status-lists/{own['code']}"
    assert httpx.get(own["status_list"]).status_code == 200
