"""An upload interrupted half-way (the client goes away) against a live server: nothing is
stored, neither a row nor a blob nor a temporary piece, and the next upload works."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import Database
from app.security.tokens import AccessTokenCodec
from tests.departments import create_department
from tests.factories import create_active_holder
from tests.servers import free_port, server_env, start_server, wait_until_up
from tests.vault_support import VAULT_TYPES, manifest, pdf, push


def vault_files(settings: Settings) -> list[Path]:
    root = settings.vault_directory
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


async def rows(settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        async with database.engine.connect() as connection:
            result = await connection.execute(text("SELECT count(*) FROM vault_documents"))
            return int(result.scalar_one())
    finally:
        await database.dispose()


async def test_an_interrupted_upload_leaves_nothing(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    process = start_server(server_env(settings), port, log=tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_until_up, process, base)
        codec = AccessTokenCodec(settings.secret("token_secret"), f"ssc:{settings.issuer}")
        runtime = SimpleNamespace(access_tokens=codec)
        app = SimpleNamespace(state=SimpleNamespace(runtime=runtime))
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            holder = await create_active_holder(http, app)  # type: ignore[arg-type]
            issuer = await create_department(
                http,
                runtime,
                code="360100-hrss",
                types=VAULT_TYPES,  # type: ignore[arg-type]
            )
            content = pdf("interrupted", 2_000_000)
            signature = issuer.sign(manifest(holder.card, content))

            head = (
                "POST /v1/documents HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {issuer.access_token}\r\n"
                "Content-Type: application/pdf\r\n"
                f"Document-Signature: {signature}\r\n"
                f"Content-Length: {len(content)}\r\n\r\n"
            ).encode()

            def send_half() -> list[Path]:
                with socket.create_connection(("127.0.0.1", port)) as raw:
                    raw.sendall(head + content[: len(content) // 2])
                    deadline = time.monotonic() + 5
                    while not (writing := vault_files(settings)) and time.monotonic() < deadline:
                        time.sleep(0.02)
                    return writing

            writing = await asyncio.to_thread(send_half)
            assert [path.suffix for path in writing] == [".part"]  # cut while being written
            deadline = time.monotonic() + 10
            while vault_files(settings) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert vault_files(settings) == []
            assert await rows(settings) == 0

            complete = await push(http, issuer, content, signature)
            assert complete.status_code == 201, complete.text
            assert await rows(settings) == 1
            assert len(vault_files(settings)) == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]


pytestmark = pytest.mark.timeout(120)
