"""Property-based fuzzing of every operation in the OpenAPI schema with schemathesis, against a
real uvicorn server, with every check (`--checks all`): no server error (5xx), and the service
answers what its schema says (status codes, content types, bodies, headers, `Allow`), accepts
what the schema calls valid and refuses what it calls invalid (`schemathesis.toml` names the
few rules beyond JSON Schema), and what it creates can be found.

Runs once anonymously and once with a token of each principal kind (the holder and the scanner
seeded by `ssc demo`, so their tokens name a real card and organisation), so the fuzzer reaches
the code behind authentication too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import decode_secret, new_secret
from app.ratelimits.service import RateLimitRule
from app.security.tokens import AccessTokenCodec, PrincipalKind
from tests.servers import SSC, free_port, start_server, wait_until_up

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = int(os.environ.get("SSC_FUZZ_EXAMPLES", "10"))


@dataclass
class RunningServer:
    base_url: str
    tokens: AccessTokenCodec
    demo: dict[str, Any]
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    var = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    token_secret = new_secret()
    env = {
        **os.environ,
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var}/ssc.db",
        "SSC_REDIS_URL": "",
        "SSC_VAR_DIR": str(var),
        "SSC_KEY_DIR": str(var / "keys"),
        "SSC_KEY_ENCRYPTION_KEY": new_secret(),
        "SSC_DATA_KEY": new_secret(),
        "SSC_TOKEN_SECRET": token_secret,
        "SSC_ISSUER": "360000",
        "SSC_PORT": str(port),
        "SSC_LOG_LEVEL": "warning",
        # every example reaches its handler (the limits have their own tests)
        **{f"SSC_RATE_LIMIT_{rule.name.upper()}": "1000000/60" for rule in RateLimitRule},
    }
    subprocess.run([SSC, "migrate"], env=env, check=True, capture_output=True)
    log = var / "server.log"
    process = start_server(env, port, log=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        codec = AccessTokenCodec(decode_secret(token_secret, "token secret"), "ssc:360000")
        seeded = subprocess.run(
            [SSC, "demo", "--json"], env=env, check=True, capture_output=True, text=True
        )
        yield RunningServer(base_url, codec, json.loads(seeded.stdout), log)
    finally:
        process.terminate()
        process.wait(timeout=10)


PATHS_OF = {
    "anonymous": "",  # every operation
    "holder": "^/v1/(me|auth|ecard)/",
    "scanner": "^/v1/(verify|scanner)",
    "admin": "^/v1/admin/",
}
"""What each principal's run fuzzes: everything anonymously, then each principal's own
operations (another's answer 401/403 to it, which the anonymous run already covers)."""


def bearer_for(server: RunningServer, kind: str) -> list[str]:
    if kind == "anonymous":
        return []
    if kind in ("holder", "scanner"):
        token = server.demo[kind]["access_token"]
    else:
        token = server.tokens.issue(PrincipalKind.admin, "admin-fuzz", ["admin"], 600).token
    return ["-H", f"Authorization: Bearer {token}"]


@pytest.mark.parametrize("principal", ["anonymous", "holder", "scanner", "admin"])
def test_every_operation_conforms_to_the_schema(
    server: RunningServer, principal: str, tmp_path: Path
) -> None:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "junit.xml"),
        *bearer_for(server, principal),
        "--include-path-regex",
        PATHS_OF[principal],
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    server_log = server.log.read_text(errors="replace")[-3000:]
    assert result.returncode == 0, (
        result.stdout[-6000:] + result.stderr[-2000:] + "\nserver log:\n" + server_log
    )
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if re.match(PATHS_OF[principal], path)
    }
    tested = {case.get("name") for case in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    assert operations <= tested, f"not fuzzed: {sorted(operations - tested)}"
