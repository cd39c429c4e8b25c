"""The HR e-document vault through the API: push, list, search, download, shares, versions,
revocation, and every bad input answered with a clear problem and nothing half-written."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from joserfc import jws as jose_jws
from joserfc.jwk import ECKey, KeySet
from sqlmodel import select

from app.accesslog.models import AccessLogEntry
from app.cards.models import utcnow
from app.runtime import Runtime, derive_key
from app.vault.models import VaultDocument, VaultShare
from app.vault.service import rewrap_data_keys, sweep_orphans
from tests.departments import Department, create_department
from tests.factories import ActiveHolder, create_active_holder
from tests.vault_support import (
    blob_files,
    database_bytes,
    document_rows,
    hr_issuer,
    manifest,
    pdf,
    plaintext_in,
    push,
)
from token_service.envelope import MasterKeys
from token_service.jws import public_jwk


async def setup(client: httpx.AsyncClient, app: FastAPI) -> tuple[ActiveHolder, Department]:
    holder = await create_active_holder(client, app)
    issuer = await hr_issuer(client, app)
    return holder, issuer


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


class TestRoundTrip:
    async def test_push_list_search_download_with_no_plaintext_at_rest(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        marker = f"CONTRACT-BODY-{uuid.uuid4().hex}"
        content = pdf(marker, 300_000)
        signed = manifest(holder.card, content)
        pushed = await push(client, issuer, content, signed)
        assert pushed.status_code == 201, pushed.text
        document_id = pushed.json()["id"]

        listed = await client.get("/v1/me/documents", headers=holder.headers)
        assert [item["id"] for item in listed.json()["items"]] == [document_id]
        item = listed.json()["items"][0]
        assert item["summary"] == {
            "occupation": "电工",
            "level": "三级",
            "evaluation_body": "南昌职业技能鉴定中心",
        }
        assert item["sha256"] == hashlib.sha256(content).hexdigest()
        assert item["issuer"] == issuer.code

        for query, hits in [
            ("电工", 1),
            ("技能等级", 1),
            ("ELECTRICIAN", 1),
            ("鉴定中心", 1),
            ("会计", 0),
            ("S360100202611200042", 0),  # a personal field is sealed: not searchable
        ]:
            found = await client.get(
                "/v1/me/documents", params={"q": query}, headers=holder.headers
            )
            assert found.status_code == 200
            assert len(found.json()["items"]) == hits, query

        detail = await client.get(f"/v1/me/documents/{document_id}", headers=holder.headers)
        assert detail.json()["personal"] == {"certificate_number": "S360100202611200042"}
        assert (
            detail.json()["issuer_signature"] == issuer.sign(signed)
            or detail.json()["issuer_signature"].count(".") == 2
        )

        downloaded = await client.get(
            f"/v1/me/documents/{document_id}/content", headers=holder.headers
        )
        assert downloaded.status_code == 200
        assert downloaded.content == content
        assert downloaded.headers["content-type"] == "application/pdf"

        runtime = runtime_of(app)
        secrets = [
            marker,
            holder.card.document_number,
            holder.card.name,
            "S360100202611200042",
        ]
        stored = await database_bytes(runtime)
        assert plaintext_in(stored, secrets) == []
        blobs = b"".join(path.read_bytes() for path in blob_files(runtime))
        assert len(blobs) > len(content)
        assert plaintext_in(blobs, secrets) == []
        assert content[1000:1100] not in blobs

    async def test_filters_by_type_issuer_and_date(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = b'{"record": "employment", "employer": "ACME"}'
        employment = manifest(
            holder.card,
            content,
            doc_type="employment_record",
            title="就业登记 ACME",
            summary={"employer": "ACME 有限公司", "position": "工程师"},
            content_type="application/json",
        )
        assert (
            await push(client, issuer, content, employment, "application/json")
        ).status_code == 201
        other = pdf("x")
        assert (await push(client, issuer, other, manifest(holder.card, other))).status_code == 201

        async def count(**params: str) -> int:
            found = await client.get("/v1/me/documents", params=params, headers=holder.headers)
            assert found.status_code == 200, found.text
            return len(found.json()["items"])

        assert await count() == 2
        assert await count(type="employment_record") == 1
        assert await count(issuer=issuer.code) == 2
        assert await count(issuer="someone-else") == 0
        assert await count(issued_from="2026-11-20T00:00:00Z") == 2
        assert await count(issued_to="2026-11-01T00:00:00Z") == 0
        assert await count(q="ACME", type="employment_record") == 1

    async def test_another_holder_sees_nothing(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("mine")
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        stranger = await create_active_holder(client, app)
        listed = await client.get("/v1/me/documents", headers=stranger.headers)
        assert listed.json()["items"] == []
        for path in ("", "/content", "/shares"):
            response = await client.get(
                f"/v1/me/documents/{pushed.json()['id']}{path}", headers=stranger.headers
            )
            assert response.status_code == 404
            assert response.json()["type"] == "/problems/document-not-found"


class TestVersions:
    async def test_idempotent_supersede_and_revoke(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        first = pdf("v1")
        signed = manifest(holder.card, first, document_id="cert-7")
        created = await push(client, issuer, first, signed)
        again = await push(client, issuer, first, signed)
        assert (created.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == created.json()["id"] and again.json()["created"] is False

        second = pdf("v2")
        newer = await push(
            client, issuer, second, manifest(holder.card, second, document_id="cert-7", version=2)
        )
        assert newer.status_code == 201
        listed = (await client.get("/v1/me/documents", headers=holder.headers)).json()["items"]
        assert [(item["version"], item["status"]) for item in listed] == [(2, "valid")]
        detail = await client.get(f"/v1/me/documents/{newer.json()['id']}", headers=holder.headers)
        assert [(v["version"], v["status"]) for v in detail.json()["history"]] == [
            (2, "valid"),
            (1, "superseded"),
        ]
        old = await client.get(
            f"/v1/me/documents/{created.json()['id']}/content", headers=holder.headers
        )
        assert old.content == first  # history kept, file and all

        retried = await push(
            client, issuer, first, manifest(holder.card, first, document_id="cert-7", version=1)
        )
        assert retried.status_code == 200  # a late retry of version 1 changes nothing
        fourth = pdf("v4")
        assert (
            await push(
                client,
                issuer,
                fourth,
                manifest(holder.card, fourth, document_id="cert-7", version=4),
            )
        ).status_code == 201
        stale = await push(
            client, issuer, second, manifest(holder.card, second, document_id="cert-7", version=3)
        )
        assert stale.status_code == 409
        assert stale.json()["type"] == "/problems/stale-version"

        revoked = await client.post(
            "/v1/documents/cert-7/revocation", json={"reason": "错发"}, headers=issuer.headers
        )
        assert revoked.status_code == 200, revoked.text
        listed = (await client.get("/v1/me/documents", headers=holder.headers)).json()["items"]
        assert [(item["version"], item["status"]) for item in listed] == [(4, "revoked")]
        assert listed[0]["revocation_reason"] == "错发"


class TestBadInput:
    """Each a clear 4xx problem; the database and the blob store checked afterwards."""

    async def assert_nothing_stored(self, runtime: Runtime, rows: int = 0) -> None:
        assert await document_rows(runtime) == rows
        assert len(blob_files(runtime)) == rows

    async def test_oversize(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        runtime = runtime_of(app)
        runtime.settings.vault_max_document_bytes = 10_000
        content = pdf("big", 20_000)
        declared = await push(client, issuer, content, manifest(holder.card, content))
        assert declared.status_code == 413
        assert declared.json()["type"] == "/problems/document-too-large"
        # a manifest that lies about the size: the stream is cut at the limit
        lying = await push(client, issuer, content, manifest(holder.card, content, size=5000))
        assert lying.status_code == 413
        await self.assert_nothing_stored(runtime)

    async def test_wrong_content_type(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
        sniffed = await push(client, issuer, png, manifest(holder.card, png))
        assert sniffed.status_code == 415
        assert sniffed.json()["type"] == "/problems/unsupported-content"
        content = pdf("pdf")
        as_json = await push(
            client,
            issuer,
            content,
            manifest(holder.card, content, content_type="application/json"),
            "application/json",
        )
        assert as_json.status_code == 415
        media = await push(client, issuer, content, manifest(holder.card, content), "image/png")
        assert media.status_code == 415
        await self.assert_nothing_stored(runtime_of(app))

    async def test_bad_signature(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("signed")
        signature = issuer.sign(manifest(holder.card, content))
        header, payload, sig = signature.split(".")
        tampered = f"{header}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        response = await push(client, issuer, content, tampered)
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/signature-rejected"
        missing = await client.post(
            "/v1/documents",
            content=content,
            headers={**issuer.headers, "Content-Type": "application/pdf"},
        )
        assert missing.status_code == 422
        await self.assert_nothing_stored(runtime_of(app))

    async def test_content_not_the_signed_one(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        signed_for = pdf("original")
        other = pdf("swapped")
        response = await push(client, issuer, other, manifest(holder.card, signed_for))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/content-mismatch"
        await self.assert_nothing_stored(runtime_of(app))

    async def test_unknown_holder(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("nobody")
        nobody = manifest(holder.card, content, holder_number="11010519491231002X")
        response = await push(client, issuer, content, nobody)
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/unknown-holder"
        await self.assert_nothing_stored(runtime_of(app))

    async def test_duplicate_id(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        first, second = pdf("one"), pdf("two")
        assert (
            await push(client, issuer, first, manifest(holder.card, first, document_id="dup"))
        ).status_code == 201
        duplicate = await push(
            client, issuer, second, manifest(holder.card, second, document_id="dup")
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["type"] == "/problems/duplicate-document"
        await self.assert_nothing_stored(runtime_of(app), rows=1)

    async def test_control_characters_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """PostgreSQL refuses NUL in text: such input must be a 422, never a 500."""
        holder, issuer = await setup(client, app)
        content = pdf("nul")
        titled = await push(client, issuer, content, manifest(holder.card, content, title="a\x00b"))
        assert titled.status_code == 422
        assert titled.json()["type"] == "/problems/invalid-vault-document"
        await self.assert_nothing_stored(runtime_of(app))
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        share = await client.post(
            f"/v1/me/documents/{pushed.json()['id']}/shares",
            json={"purpose": "x\u0000y", "expires_in": 600},
            headers=holder.headers,
        )
        assert share.status_code == 422
        listed = await client.get(
            "/v1/me/documents", params={"type": "a\x00", "q": "\x00"}, headers=holder.headers
        )
        assert listed.status_code == 422

    async def test_type_not_issued_by_this_issuer(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder = await create_active_holder(client, app)
        traffic = await create_department(client, runtime_of(app))
        content = pdf("not theirs")
        response = await push(client, traffic, content, manifest(holder.card, content))
        assert response.status_code == 403
        await self.assert_nothing_stored(runtime_of(app))


class TestBulk:
    async def test_a_result_per_line(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        holder, issuer = await setup(client, app)
        good = [pdf(f"bulk-{i}") for i in range(3)]
        lines = [
            json.dumps(
                {
                    "signature": issuer.sign(manifest(holder.card, body)),
                    "content": base64.b64encode(body).decode(),
                }
            )
            for body in good
        ]
        bad_content = pdf("bad")
        lines.insert(
            1,
            json.dumps(
                {
                    "signature": issuer.sign(manifest(holder.card, pdf("other"))),
                    "content": base64.b64encode(bad_content).decode(),
                }
            ),
        )
        lines.append("not json")
        response = await client.post(
            "/v1/documents",
            content="\n".join(lines).encode(),
            headers={**issuer.headers, "Content-Type": "application/jsonl"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["stored"], body["unchanged"], body["refused"]) == (3, 0, 2)
        assert [r["status"] for r in body["results"]] == [201, 422, 201, 201, 422]
        assert await document_rows(runtime_of(app)) == 3
        assert len(blob_files(runtime_of(app))) == 3


class TestShares:
    async def test_one_time_share_opens_once_and_is_logged(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("shared", 100_000)
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        document_id = pushed.json()["id"]
        created = await client.post(
            f"/v1/me/documents/{document_id}/shares",
            json={"purpose": "入职审核", "expires_in": 3600, "one_time": True},
            headers=holder.headers,
        )
        assert created.status_code == 201, created.text
        share = created.json()
        assert share["url"].endswith(f"/v1/shares/{share['share_id']}")
        assert share["qr_svg"].startswith("<?xml") or "<svg" in share["qr_svg"]

        opened = await client.get(f"/v1/shares/{share['share_id']}")
        assert opened.status_code == 200
        assert opened.content == content
        assert opened.headers["x-document-status"] == "valid"

        jwks = (await client.get("/.well-known/jwks.json")).json()
        keys = KeySet.import_key_set(
            {"keys": [{k: v for k, v in key.items() if k != "status"} for key in jwks["keys"]]}
        )
        attestation = jose_jws.deserialize_compact(
            opened.headers["x-vault-attestation"], keys, algorithms=["ES256"]
        )
        claims = json.loads(attestation.payload)
        assert claims["document"]["sha256"] == hashlib.sha256(content).hexdigest()
        assert claims["issuer_signature_valid"] is True and claims["revoked"] is False
        assert claims["holder"]["masked_card_number"].endswith(holder.card_number[-4:])
        issuer_key = ECKey.import_key(
            {k: v for k, v in _public_jwk(issuer).items() if k != "kid"} | {"kid": issuer.kid}
        )
        manifest_jws = jose_jws.deserialize_compact(
            opened.headers["x-issuer-signature"], issuer_key, algorithms=["ES256"]
        )
        assert json.loads(manifest_jws.payload)["content"]["sha256"] == claims["document"]["sha256"]

        second = await client.get(f"/v1/shares/{share['share_id']}")
        assert second.status_code == 404
        assert second.json()["type"] == "/problems/share-not-found"

        listed = await client.get(f"/v1/me/documents/{document_id}/shares", headers=holder.headers)
        assert [(s["state"], s["opened_count"]) for s in listed.json()["items"]] == [("used", 1)]

        entries = await _access_log(runtime_of(app), holder, count=2)
        assert sorted((e.source, e.outcome, e.venue) for e in entries) == [
            ("document_opened", "downloaded", "入职审核"),
            ("document_shared", "shared", "入职审核"),
        ]

    async def test_refused_after_expiry_or_revocation(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("expiring")
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        document_id = pushed.json()["id"]

        async def share() -> dict[str, str]:
            created = await client.post(
                f"/v1/me/documents/{document_id}/shares",
                json={"purpose": "背景调查", "expires_in": 600},
                headers=holder.headers,
            )
            assert created.status_code == 201
            body: dict[str, str] = created.json()
            return body

        reusable = await share()
        for _ in range(2):
            assert (await client.get(f"/v1/shares/{reusable['share_id']}")).status_code == 200

        expiring = await share()
        async with runtime_of(app).database.session() as session:
            row = await session.get(VaultShare, uuid.UUID(expiring["id"]))
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
        assert (await client.get(f"/v1/shares/{expiring['share_id']}")).status_code == 404

        revoked = await client.delete(
            f"/v1/me/documents/{document_id}/shares/{reusable['id']}", headers=holder.headers
        )
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        assert (await client.get(f"/v1/shares/{reusable['share_id']}")).status_code == 404
        unknown = "shr_" + "A" * 43
        assert (await client.get(f"/v1/shares/{unknown}")).status_code == 404

    async def test_a_revoked_document_is_shared_as_revoked(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("to revoke")
        signed = manifest(holder.card, content, document_id="rev-1")
        pushed = await push(client, issuer, content, signed)
        created = await client.post(
            f"/v1/me/documents/{pushed.json()['id']}/shares",
            json={"purpose": "check", "expires_in": 600},
            headers=holder.headers,
        )
        await client.post(
            "/v1/documents/rev-1/revocation", json={"reason": "withdrawn"}, headers=issuer.headers
        )
        opened = await client.get(f"/v1/shares/{created.json()['share_id']}")
        assert opened.status_code == 200
        assert opened.headers["x-document-status"] == "revoked"
        claims = json.loads(
            jose_jws.extract_compact(opened.headers["x-vault-attestation"].encode()).payload
        )
        assert claims["revoked"] is True


class TestOrphans:
    async def test_the_sweeper_deletes_blobs_without_a_row(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("kept")
        assert (
            await push(client, issuer, content, manifest(holder.card, content))
        ).status_code == 201
        runtime = runtime_of(app)

        async def orphan() -> None:
            await runtime.vault.seal_into_store(uuid.uuid4(), _once(b"%PDF-orphan"))

        await orphan()
        assert len(blob_files(runtime)) == 2
        assert await sweep_orphans(runtime, grace=3600) == 0  # too young: may be in flight
        assert await sweep_orphans(runtime, grace=0) == 1
        assert len(blob_files(runtime)) == 1
        kept = await client.get("/v1/me/documents", headers=holder.headers)
        download = await client.get(
            f"/v1/me/documents/{kept.json()['items'][0]['id']}/content", headers=holder.headers
        )
        assert download.content == content


async def _once(data: bytes):  # type: ignore[no-untyped-def]
    yield data


def _public_jwk(issuer: Department) -> dict[str, str]:
    return public_jwk(issuer.key, issuer.kid)


async def _access_log(
    runtime: Runtime, holder: ActiveHolder, *, count: int, timeout: float = 10
) -> list[AccessLogEntry]:
    card_id = uuid.UUID(holder.card.card_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with runtime.database.session() as session:
            rows = list(
                (
                    await session.exec(
                        select(AccessLogEntry).where(AccessLogEntry.card_id == card_id)
                    )
                ).all()
            )
        documents = [row for row in rows if row.source.startswith("document_")]
        if len(documents) >= count or loop.time() > deadline:
            return documents
        await asyncio.sleep(0.05)


class TestMasterKeyRotation:
    async def test_rewrap_under_a_new_master_key_then_drop_the_old(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder, issuer = await setup(client, app)
        content = pdf("rotated")
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        runtime = runtime_of(app)
        old = derive_key(runtime.settings.secret("data_key"), "ssc/vault/master/v1")
        new = os.urandom(32)
        runtime.vault.master_keys = MasterKeys({"k1": new, "k0": old}, "k1")
        assert await rewrap_data_keys(runtime) == 1
        assert await rewrap_data_keys(runtime) == 0
        runtime.vault.master_keys = MasterKeys({"k1": new}, "k1")
        async with runtime.database.session() as session:
            row = await session.get(VaultDocument, uuid.UUID(pushed.json()["id"]))
            assert row is not None and row.key_id == "k1"
        download = await client.get(
            f"/v1/me/documents/{pushed.json()['id']}/content", headers=holder.headers
        )
        assert download.content == content
