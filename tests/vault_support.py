"""Test helpers for the document vault: an HR issuer, signed manifests, pushes, and reading
the database and the blob directory as an attacker with the disk would."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from app.runtime import Runtime
from tests.departments import Department, create_department
from tests.factories import IssuedCard

VAULT_TYPES = [
    "employment_record",
    "unemployment_registration",
    "training_certificate",
    "skill_level_certificate",
    "professional_title",
    "professional_qualification",
    "labour_contract",
]


async def hr_issuer(
    client: httpx.AsyncClient, app: FastAPI, code: str = "360100-hrss", kind: str = "department"
) -> Department:
    return await create_department(
        client, app.state.runtime, code=code, types=VAULT_TYPES, kind=kind
    )


def pdf(marker: str, size: int = 4000) -> bytes:
    """A file that starts like a PDF and carries `marker` in the clear."""
    head = b"%PDF-1.7\n% " + marker.encode() + b"\n"
    return head + os.urandom(max(0, size - len(head) - 6)) + b"\n%%EOF"


def manifest(
    card: IssuedCard,
    content: bytes,
    *,
    document_id: str | None = None,
    version: int = 1,
    doc_type: str = "skill_level_certificate",
    title: str = "职业技能等级证书 电工 三级 Electrician level 3",
    summary: Mapping[str, str] | None = None,
    content_type: str = "application/pdf",
    size: int | None = None,
    sha256: str | None = None,
    holder_number: str | None = None,
) -> dict[str, Any]:
    return {
        "document_id": document_id or f"doc-{uuid.uuid4().hex[:12]}",
        "version": version,
        "type": doc_type,
        "holder": {
            "document_type": card.document_type,
            "document_number": holder_number or card.document_number,
        },
        "title": title,
        "issued_at": "2026-11-20T09:00:00+08:00",
        "valid_until": "2031-11-20T00:00:00+08:00",
        "summary": dict(
            summary
            if summary is not None
            else {
                "occupation": "电工",
                "level": "三级",
                "evaluation_body": "南昌职业技能鉴定中心",
                "certificate_number": "S360100202611200042",
            }
        ),
        "content": {
            "type": content_type,
            "sha256": sha256 or hashlib.sha256(content).hexdigest(),
            "size": len(content) if size is None else size,
        },
    }


async def push(
    client: httpx.AsyncClient,
    issuer: Department,
    body: bytes,
    signed: Mapping[str, Any] | str,
    content_type: str = "application/pdf",
) -> httpx.Response:
    signature = signed if isinstance(signed, str) else issuer.sign(dict(signed))
    return await client.post(
        "/v1/documents",
        content=body,
        headers={
            **issuer.headers,
            "Content-Type": content_type,
            "Document-Signature": signature,
        },
    )


async def document_rows(runtime: Runtime) -> int:
    async with runtime.database.engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT count(*) FROM vault_documents"))).scalar_one()
        )


def blob_files(runtime: Runtime) -> list[Path]:
    """Every file in the vault's directory, temporary ones included."""
    root = runtime.settings.vault_directory
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


async def database_bytes(runtime: Runtime) -> bytes:
    """Everything the database holds, as an attacker with its files or a dump would read it:
    the SQLite files (with the write-ahead log), or every row of every table as text."""
    url = runtime.settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            if candidate.exists()
        )
    dumped = []
    async with runtime.database.engine.connect() as connection:
        tables = await connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        for (table,) in tables.all():
            rows = await connection.execute(text(f'SELECT t::text FROM "{table}" t'))
            dumped.extend(row[0] for row in rows.all())
    return "\n".join(dumped).encode()


def plaintext_in(haystack: bytes, needles: list[str]) -> list[str]:
    found = []
    for needle in needles:
        forms = {needle.encode(), needle.encode("utf-16-le")}
        if any(form in haystack for form in forms):
            found.append(needle)
    return found
