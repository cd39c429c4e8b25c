"""A department reads a holder's vault documents with the holder's consent (the consent
requests of the e-licence issue): exactly the consented types, while the consent holds, each
read in the holder's access log; without it 403."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import FastAPI
from sqlmodel import select

from app.accesslog.models import AccessLogEntry
from app.runtime import Runtime
from tests.departments import create_department
from tests.factories import create_active_holder
from tests.vault_support import hr_issuer, manifest, pdf, push


async def test_consented_read_then_revocation(app: FastAPI, client: httpx.AsyncClient) -> None:
    runtime: Runtime = app.state.runtime
    holder = await create_active_holder(client, app)
    hr = await hr_issuer(client, app)
    certificate = pdf("certificate")
    pushed = await push(client, hr, certificate, manifest(holder.card, certificate))
    contract = b'{"contract": "text"}'
    other = await push(
        client,
        hr,
        contract,
        manifest(
            holder.card,
            contract,
            doc_type="employment_record",
            summary={"employer": "ACME"},
            content_type="application/json",
        ),
        "application/json",
    )
    assert pushed.status_code == other.status_code == 201
    reader = await create_department(
        client, runtime, code="360100-talent", types=["training_certificate"]
    )
    asked = await client.post(
        "/v1/consent-requests",
        json={
            "document_type": holder.card.document_type,
            "document_number": holder.card.document_number,
            "items": ["skill_level_certificate"],
            "purpose": "人才引进资格审核",
            "access_days": 7,
        },
        headers=reader.headers,
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    listing = f"/v1/consent-requests/{request_id}/documents"
    assert (await client.get(listing, headers=reader.headers)).status_code == 403  # pending

    approved = await client.post(
        f"/v1/me/consent-requests/{request_id}/approve",
        json={"pin": holder.pin},
        headers=holder.headers,
    )
    assert approved.status_code == 200, approved.text
    listed = await client.get(listing, headers=reader.headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [pushed.json()["id"]]
    content = await client.get(f"{listing}/{pushed.json()['id']}/content", headers=reader.headers)
    assert content.status_code == 200 and content.content == certificate
    not_consented = await client.get(
        f"{listing}/{other.json()['id']}/content", headers=reader.headers
    )
    assert not_consented.status_code == 403

    revoked = await client.post(
        f"/v1/me/consent-requests/{request_id}/revoke", headers=holder.headers
    )
    assert revoked.status_code == 200, revoked.text
    after = await client.get(f"{listing}/{pushed.json()['id']}/content", headers=reader.headers)
    assert after.status_code == 403

    card_id = uuid.UUID(holder.card.card_id)
    for _ in range(200):
        async with runtime.database.session() as session:
            rows = (
                await session.exec(select(AccessLogEntry).where(AccessLogEntry.card_id == card_id))
            ).all()
        sources = sorted(row.source for row in rows if row.source.startswith("dept_"))
        if len(sources) >= 5:
            break
        await asyncio.sleep(0.05)
    # pending, a type not consented, after the revocation: each refusal logged too
    assert sources == ["dept_read", "dept_read", "dept_refused", "dept_refused", "dept_refused"]
