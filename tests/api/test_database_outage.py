"""The database stops while the service runs (issue 10, defects 1 and 2).

Each test runs its own PostgreSQL (`OwnPostgres`), stops it mid-test and starts it again:
requests that need the database answer 503 problem+json `database-unavailable` with
`Retry-After` (never 500, never a dropped connection), the outage is logged in one line, the
service heals by itself when the database is back, and no application answered 2xx is
missing afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.app import create_app
from app.cards.models import CardApplication
from app.config import Settings, load_settings, new_secret
from app.db import Database
from tests.conftest import UNLIMITED_RATES
from tests.departments import create_department
from tests.factories import (
    ActiveHolder,
    application_body,
    create_active_holder,
    create_scanner,
    distinct_resident_ids,
)
from tests.servers import OwnPostgres, free_port, server_env, start_server, wait_until_up

PROBLEM = "application/problem+json"
OUTAGE_LINE = "database unavailable"
RECOVERY_LINE = "database available again"
APPLICANTS = 16


@pytest.fixture
def outage_settings(own_postgres: OwnPostgres, tmp_path: Path) -> Settings:
    """The service on the private PostgreSQL and the in-process store."""
    return load_settings(
        environment="test",
        database_url=own_postgres.url,
        redis_url=None,
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        auto_approve_applications=False,
        log_level="warning",
        **UNLIMITED_RATES,
    )


def assert_unavailable(name: str, response: httpx.Response) -> None:
    assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM, name
    assert response.json()["type"].endswith("/database-unavailable"), name
    assert int(response.headers["retry-after"]) > 0, name


def database_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "ssc.db"]


async def test_an_outage_answers_503_is_logged_once_and_heals(
    outage_settings: Settings, own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(outage_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, app.state.runtime)
        issuer = await create_department(client, app.state.runtime, kind="employer")
        pages = await signed_in_pages(app, holder)
        calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "login": lambda: client.post(
                "/v1/auth/login",
                json={
                    "card_number": holder.card_number,
                    "pin": holder.pin,
                    "device_id": holder.device_id,
                },
            ),
            "qr": lambda: client.get("/v1/me/qr", headers=holder.headers),
            "oauth token": lambda: client.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(scanner.client_id, scanner.client_secret),
            ),
            "application": lambda: client.post("/v1/applications", json=application_body()),
            "access log": lambda: client.get("/v1/me/access-log", headers=holder.headers),
            "issuer download": lambda: client.get(
                "/v1/documents/no-such-document/content", headers=issuer.headers
            ),
            "licences page": lambda: pages.get("/h5/licences"),
            "payments page": lambda: pages.get("/h5/payments"),
        }
        # An offline scan log goes to the audit stream, and the scanner's liveness is read
        # from the store's mirror: the upload needs no database.
        upload = lambda: client.post(  # noqa: E731
            "/v1/scanner/scans",
            json={
                "scans": [
                    {
                        "scan_id": "s1",
                        "token": "SSC1:X",
                        "scanned_at": "2026-11-26T08:30:00Z",
                        "verdict": "valid",
                    }
                ]
            },
            headers=scanner.headers,
        )
        caplog.set_level(logging.INFO)
        caplog.clear()

        own_postgres.stop()
        for _ in range(3):
            for name, call in calls.items():
                assert_unavailable(name, await call())
            assert (await upload()).status_code == 200
        lines = database_lines(caplog)
        assert len(lines) == 1 and lines[0].startswith(OUTAGE_LINE), lines
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []

        own_postgres.start()
        statuses = {name: (await call()).status_code for name, call in calls.items()}
        assert statuses == {
            "login": 200,
            "qr": 200,
            "oauth token": 200,
            "application": 201,
            "access log": 200,
            "issuer download": 404,
            "licences page": 200,
            "payments page": 200,
        }
        lines = database_lines(caplog)
        assert len(lines) == 2 and lines[1].startswith(RECOVERY_LINE), lines
        await pages.aclose()


async def signed_in_pages(app: FastAPI, holder: ActiveHolder) -> httpx.AsyncClient:
    """A browser of the mobile pages with the holder's card activated (on a loopback address:
    the page cookies are not `Secure` there); the caller closes it."""
    pages = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
    form = await pages.get("/h5/activate")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text[:300]
    answer = await pages.post(
        "/h5/activate",
        data={
            "csrf": csrf.group(1),
            "card_number": holder.card_number,
            "document_number": holder.card.document_number,
            "pin": holder.pin,
        },
    )
    assert answer.status_code == 303, answer.text
    return pages


async def stored_application_ids(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.session() as session:
            return {str(id_) for id_ in await session.exec(select(CardApplication.id))}
    finally:
        await database.dispose()


async def test_no_application_answered_2xx_is_lost_when_the_database_stops_mid_load(
    outage_settings: Settings, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """Concurrent applications to a real `ssc serve`; the database stops for 3 s among them."""
    port, log = free_port(), tmp_path / "server.log"
    process = start_server(server_env(outage_settings), port, log=log)
    answers: Counter[str] = Counter()
    acknowledged: list[str] = []
    created_after_restart = 0
    restarted = False
    try:
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_until_up, process, base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            stop = asyncio.Event()
            documents = distinct_resident_ids()

            async def applicant() -> None:
                nonlocal created_after_restart
                while not stop.is_set():
                    try:
                        response = await http.post(
                            "/v1/applications",
                            json=application_body(document_number=next(documents)),
                        )
                    except httpx.TransportError as error:
                        answers[f"no answer: {type(error).__name__}"] += 1
                        continue
                    answers[str(response.status_code)] += 1
                    if response.is_success:
                        acknowledged.append(response.json()["id"])
                        created_after_restart += restarted
                    elif response.status_code == 503:
                        await asyncio.sleep(0.05)

            applicants = [asyncio.create_task(applicant()) for _ in range(APPLICANTS)]
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.sleep(3)
            await asyncio.to_thread(own_postgres.start)
            restarted = True
            deadline = time.monotonic() + 10
            while created_after_restart < APPLICANTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*applicants)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    assert set(answers) <= {"201", "503"}, answers
    assert answers["503"] > 0, "the outage was not noticed"
    assert created_after_restart >= APPLICANTS, answers
    missing = set(acknowledged) - await stored_application_ids(own_postgres.url)
    assert missing == set(), f"{len(missing)} of {len(acknowledged)} acknowledged are lost"
    server_log = log.read_text()
    assert server_log.count(OUTAGE_LINE) == 1, server_log[-3000:]
    assert "Traceback" not in server_log, server_log[-3000:]
