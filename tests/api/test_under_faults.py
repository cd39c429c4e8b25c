"""Nothing acknowledged is lost while the servers fail under load (issue 10's acceptance run).

Two `ssc serve` workers on a PostgreSQL and a Redis that this test owns (their own ports; Redis
with the production persistence of docs/operations.md: an append-only file fsynced on every
write) take verify and holder traffic for 20 s while (a) Redis is killed with signal 9 and
restarted, (b) PostgreSQL is stopped for 5 s and (c) one worker is killed with signal 9 (uvicorn
starts another). Afterwards:

- every application answered 201 has its row;
- every `valid` verdict has exactly one audit row of that token saying it was admitted (the
  first claim, `outcome` `first`, of an active card); its second scan is audited as `again`;
- no token was answered `valid` twice;
- `ssc audit verify-chain` passes.

Answers other than 2xx during the faults are expected (503 with `Retry-After`, a connection
dropped by the killed worker); a 500, or a 503 without `Retry-After`, fails the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from app.audit.consumer import AuditConsumer
from app.config import Settings, load_settings, new_secret
from app.db import Database
from app.runtime import Runtime
from tests.conftest import UNLIMITED_RATES
from tests.factories import (
    DEFAULT_PIN,
    ScannerCredentials,
    admin_headers,
    application_body,
    bearer,
    create_scanner,
)
from tests.servers import SSC, OwnPostgres, OwnRedis, free_port, server_env, wait_until_up
from token_service.codec import decode_token

pytestmark = [
    pytest.mark.skipif(
        OwnPostgres.available() is not None or shutil.which("redis-server") is None,
        reason=f"needs PostgreSQL binaries and redis-server ({OwnPostgres.available()})",
    ),
    pytest.mark.timeout(240),
]

TRAFFIC_SECONDS = 20.0
HOLDERS = 6
APPLICANTS = 3
SCENE = "museum"


@dataclass
class Holder:
    card_number: str
    headers: dict[str, str]


@dataclass
class Ledger:
    """What the service acknowledged, as its clients saw it."""

    applications: list[str] = field(default_factory=list)
    valid: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    broken_answers: list[str] = field(default_factory=list)

    def saw(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        retry_after = response.headers.get("retry-after")
        if response.status_code >= 500 and (response.status_code != 503 or not retry_after):
            self.broken_answers.append(
                f"{response.status_code} {response.request.url.path}: {response.text[:200]}"
            )


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = OwnRedis(directory, appendonly=True)
    server.start()
    yield server
    server.stop()


def service_settings(postgres: OwnPostgres, redis: OwnRedis, var_dir: Path) -> Settings:
    return load_settings(
        environment="test",
        database_url=postgres.url,
        redis_url=redis.url,
        redis_namespace="faults",
        var_dir=var_dir,
        key_dir=var_dir / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        log_level="warning",
        **UNLIMITED_RATES,
    )


def worker_pids(supervisor: int) -> list[int]:
    """The uvicorn worker processes of `ssc serve` (spawned children running the app)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in command:
            pids.append(int(entry.name))
    return pids


async def new_holder(http: httpx.AsyncClient, runtime: Runtime) -> Holder:
    body = application_body()
    applied = await http.post("/v1/applications", json=body)
    assert applied.status_code == 201, applied.text
    approved = await http.post(
        f"/v1/admin/applications/{applied.json()['id']}/approve", headers=admin_headers(runtime)
    )
    assert approved.status_code == 200, approved.text
    card_number = approved.json()["card_number"]
    activated = await http.post(
        "/v1/ecard/activate",
        json={
            "card_number": card_number,
            "document_number": body["document_number"],
            "device_id": f"phone-{card_number}",
            "pin": DEFAULT_PIN,
        },
    )
    assert activated.status_code == 201, activated.text
    return Holder(card_number, bearer(activated.json()["access_token"]))


async def show_and_scan(
    http: httpx.AsyncClient,
    holder: Holder,
    scanner: ScannerCredentials,
    ledger: Ledger,
    until: float,
) -> None:
    """The phone fetches a QR; the venue scans it twice (the second must never pass)."""
    while time.monotonic() < until:
        try:
            shown = await http.get("/v1/me/qr", headers=holder.headers)
            ledger.saw(shown)
            if shown.status_code != 200:
                await asyncio.sleep(0.05)
                continue
            token = shown.json()["token"]
            for _ in range(2):
                scanned = await http.post(
                    "/v1/verify", json={"token": token, "scene": SCENE}, headers=scanner.headers
                )
                ledger.saw(scanned)
                if scanned.status_code == 200 and scanned.json()["verdict"] == "valid":
                    ledger.valid[token] += 1
        except httpx.TransportError:
            ledger.dropped += 1
            await asyncio.sleep(0.05)


async def apply_for_cards(http: httpx.AsyncClient, ledger: Ledger, until: float) -> None:
    while time.monotonic() < until:
        try:
            applied = await http.post("/v1/applications", json=application_body())
        except httpx.TransportError:
            ledger.dropped += 1
            await asyncio.sleep(0.05)
            continue
        ledger.saw(applied)
        if applied.status_code == 201:
            ledger.applications.append(applied.json()["id"])
        elif applied.status_code != 503:
            await asyncio.sleep(0.05)


async def inject_faults(
    redis: OwnRedis, postgres: OwnPostgres, supervisor: int, started: float, log_path: Path
) -> list[str]:
    """The three faults, in turn; returns what was done, for the failure message."""
    done: list[str] = []

    async def at(second: float) -> None:
        await asyncio.sleep(max(0.0, started + second - time.monotonic()))

    await at(3)
    await asyncio.to_thread(redis.kill)
    done.append("redis killed")
    await asyncio.sleep(1)
    await asyncio.to_thread(redis.start)
    done.append("redis restarted")
    await at(7)
    await asyncio.to_thread(postgres.stop)
    done.append("postgres stopped")
    await asyncio.sleep(5)
    await asyncio.to_thread(postgres.start)
    done.append("postgres started")
    await at(15)
    # uvicorn restarts a worker that exited; on a loaded machine one may be starting now
    # (waited for at most 4 s: the kill still lands while the traffic runs, until 20 s).
    deadline = time.monotonic() + 4
    while not (victims := worker_pids(supervisor)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    log_tail = log_path.read_text(errors="replace")[-3000:]
    assert victims, f"no uvicorn worker found to kill; the server's log ends:\n{log_tail}"
    os.kill(victims[0], signal.SIGKILL)
    done.append(f"worker {victims[0]} killed")
    return done


async def drain_audit_stream(runtime: Runtime) -> None:
    """Persists what the workers left in the stream, including what the killed worker had read
    and not acknowledged (the surviving consumers take that over after a minute; this drain
    takes it over at once)."""
    consumer = AuditConsumer(
        runtime.store, runtime.database, consumer="fault-test", reclaim_idle_ms=0, block_ms=0
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        handled = await consumer.reclaim_once() + await consumer.drain_once(block_ms=0)
        if not handled and await consumer.trim_once() == 0:
            return
    pytest.fail(f"the audit stream did not drain: {consumer.backlog} entries wait")


async def verify_audit_rows(database: Database) -> list[dict[str, str]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT data FROM audit_events WHERE action = 'verify'")
        )
        return [orjson.loads(row.data) for row in rows]


async def stored_applications(database: Database, ids: list[str]) -> set[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT id FROM card_applications"))
        stored = {str(row.id).replace("-", "") for row in rows}
    return {application for application in ids if application.replace("-", "") in stored}


async def test_nothing_acknowledged_is_lost_while_redis_postgres_and_a_worker_fail(
    own_postgres: OwnPostgres, persistent_redis: OwnRedis, tmp_path: Path
) -> None:
    settings = service_settings(own_postgres, persistent_redis, tmp_path / "var")
    runtime = await Runtime.start(settings)  # creates the signing keys the workers load
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [SSC, "serve", "--workers", "2", "--port", str(port)],
            env={**server_env(settings), "SSC_PORT": str(port)},
            stdout=log,
            stderr=log,
        )
    try:
        wait_until_up(server, base_url)
        ledger = Ledger()
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            scanner = await create_scanner(http, runtime, scenes=[SCENE])
            holders = [await new_holder(http, runtime) for _ in range(HOLDERS)]
            started = time.monotonic()
            until = started + TRAFFIC_SECONDS
            faults = asyncio.ensure_future(
                inject_faults(persistent_redis, own_postgres, server.pid, started, log_path)
            )
            await asyncio.gather(
                *(show_and_scan(http, holder, scanner, ledger, until) for holder in holders),
                *(apply_for_cards(http, ledger, until) for _ in range(APPLICANTS)),
            )
            done = await faults
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        await drain_audit_stream(runtime)

        summary = f"faults {done}; answers {dict(ledger.statuses)}; dropped {ledger.dropped}"
        print(summary)  # shown with -s: what the run went through
        assert ledger.broken_answers == [], summary
        assert ledger.valid and ledger.applications, summary
        assert ledger.statuses[503] > 0, f"the faults were not felt: {summary}"

        twice = [token for token, times in ledger.valid.items() if times > 1]
        assert twice == [], f"{len(twice)} tokens answered valid twice; {summary}"

        stored = await stored_applications(runtime.database, ledger.applications)
        lost = sorted(set(ledger.applications) - stored)
        assert lost == [], f"{len(lost)} applications answered 201 have no row; {summary}"

        rows = await verify_audit_rows(runtime.database)
        outcomes: dict[str, Counter[str]] = {}
        for row in rows:
            admitted = row.get("outcome") == "first" and row.get("status", "").startswith("active")
            outcome = "valid" if admitted else str(row.get("outcome"))
            outcomes.setdefault(str(row.get("cti")), Counter())[outcome] += 1
        for token in ledger.valid:
            cti = decode_token(token).claims.cti.hex()
            seen = outcomes.get(cti, Counter())
            assert seen["valid"] == 1, f"token {cti}: audit outcomes {dict(seen)}; {summary}"

        chain = subprocess.run(
            [SSC, "audit", "verify-chain"],
            env=server_env(settings),
            capture_output=True,
            text=True,
            check=False,
        )
        assert chain.returncode == 0, chain.stderr
        assert "Exception in ASGI application" not in log_path.read_text(errors="replace")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        await runtime.close()
