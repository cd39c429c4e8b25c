"""Electronic labour contracts: the employer's signature and the holder's, each verified by an
independent JOSE library (joserfc), not by ours."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from joserfc import jws as jose_jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from tests.api.test_access_log import wait_for_entries
from tests.departments import Department
from tests.factories import (
    DEFAULT_PIN,
    ActiveHolder,
    activate,
    admin_headers,
    bearer,
    create_active_holder,
    issue_card,
)
from tests.vault_support import hr_issuer, manifest, pdf, push
from token_service.jws import public_jwk

CONTRACT_SUMMARY = {
    "employer": "南昌示例科技有限公司",
    "position": "软件工程师",
    "work_location": "南昌市红谷滩区",
    "term_type": "fixed",
    "starts_on": "2026-12-01",
    "ends_on": "2029-11-30",
    "salary": "15000",
    "employee_number": "E-0042",
}


async def contract(
    client: httpx.AsyncClient, employer: Department, holder: ActiveHolder
) -> tuple[str, str, bytes]:
    """Pushes a labour contract; returns (vault id, the employer's signature, the file)."""
    content = pdf("劳动合同正文")
    signed = manifest(
        holder.card,
        content,
        document_id="contract-2026-0042",
        doc_type="labour_contract",
        title="劳动合同 软件工程师",
        summary=CONTRACT_SUMMARY,
    )
    signature = employer.sign(signed)
    pushed = await push(client, employer, content, signature)
    assert pushed.status_code == 201, pushed.text
    return pushed.json()["id"], signature, content


async def our_keys(client: httpx.AsyncClient) -> KeySet:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    return KeySet.import_key_set(
        {"keys": [{k: v for k, v in key.items() if k != "status"} for key in jwks["keys"]]}
    )


def employer_key(employer: Department) -> ECKey:
    return ECKey.import_key(public_jwk(employer.key, employer.kid))


class TestServerSignature:
    async def test_pin_confirmed_signature_on_the_holders_behalf(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder = await create_active_holder(client, app)
        employer = await hr_issuer(client, app, code="360100-acme")
        document_id, employer_signature, _ = await contract(client, employer, holder)

        view = await client.get(f"/v1/me/documents/{document_id}/signature", headers=holder.headers)
        assert view.status_code == 200, view.text
        assert view.json()["method"] == "server" and view.json()["signature"] is None

        wrong = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": "000000" if DEFAULT_PIN != "000000" else "111111"},
            headers=holder.headers,
        )
        assert wrong.status_code == 401
        unsigned = await client.get(f"/v1/me/documents/{document_id}", headers=holder.headers)
        assert unsigned.json()["holder_signature"] is None

        signed = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin},
            headers=holder.headers,
        )
        assert signed.status_code == 201, signed.text
        assert signed.json()["method"] == "server"

        # The employer downloads the signed contract and checks both signatures.
        read = await client.get("/v1/documents/contract-2026-0042", headers=employer.headers)
        assert read.status_code == 200, read.text
        version = read.json()["versions"][0]
        assert version["issuer_signature"] == employer_signature
        assert version["holder_signature_kind"] == "server"

        employer_jws = jose_jws.deserialize_compact(
            version["issuer_signature"], employer_key(employer), algorithms=["ES256"]
        )
        holder_jws = jose_jws.deserialize_compact(
            version["holder_signature"], await our_keys(client), algorithms=["ES256"]
        )
        statement = json.loads(holder_jws.payload)
        assert statement["method"] == "server" and statement["pin_confirmed"] is True
        assert statement["document"] == document_id
        assert statement["content_sha256"] == json.loads(employer_jws.payload)["content"]["sha256"]

        again = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin},
            headers=holder.headers,
        )
        assert again.status_code == 409


class TestTheEmployerDownloadsTheSignedContract:
    async def test_the_file_is_byte_identical_and_both_signatures_verify(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder = await create_active_holder(client, app)
        employer = await hr_issuer(client, app, code="360100-acme", kind="employer")
        issuers = await client.get("/v1/admin/issuers", headers=admin_headers(app.state.runtime))
        assert {row["code"]: row["kind"] for row in issuers.json()}["360100-acme"] == "employer"
        document_id, employer_signature, content = await contract(client, employer, holder)
        path = "/v1/documents/contract-2026-0042/content"

        unsigned = await client.get(path, headers=employer.headers)
        assert unsigned.status_code == 200, unsigned.text
        assert unsigned.content == content
        assert "x-holder-signature" not in unsigned.headers

        signed = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin},
            headers=holder.headers,
        )
        assert signed.status_code == 201, signed.text

        download = await client.get(path, headers=employer.headers)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["cache-control"] == "no-store"
        assert download.content == content
        digest = hashlib.sha256(download.content).hexdigest()
        assert download.headers["x-content-sha256"] == digest
        assert download.headers["x-document-version"] == "1"

        # Both signatures, checked by joserfc against the downloaded bytes.
        assert download.headers["x-issuer-signature"] == employer_signature
        employer_jws = jose_jws.deserialize_compact(
            download.headers["x-issuer-signature"], employer_key(employer), algorithms=["ES256"]
        )
        assert json.loads(employer_jws.payload)["content"]["sha256"] == digest
        holder_jws = jose_jws.deserialize_compact(
            download.headers["x-holder-signature"], await our_keys(client), algorithms=["ES256"]
        )
        statement = json.loads(holder_jws.payload)
        assert statement["document"] == document_id
        assert statement["content_sha256"] == digest
        assert statement["method"] == "server" and statement["pin_confirmed"] is True
        versions = (
            await client.get("/v1/documents/contract-2026-0042", headers=employer.headers)
        ).json()["versions"]
        assert versions[0]["holder_signature"] == download.headers["x-holder-signature"]

        chosen = await client.get(path, params={"version": 1}, headers=employer.headers)
        assert chosen.status_code == 200 and chosen.content == content

        # Anyone else, or a version or document that does not exist: the same 404.
        other = await hr_issuer(client, app, code="360100-other", kind="employer")
        refused = [
            await client.get(path, headers=other.headers),
            await client.get(f"/v1/documents/{document_id}/content", headers=other.headers),
            await client.get(f"/v1/documents/{document_id}/content", headers=employer.headers),
            await client.get("/v1/documents/no-such-contract/content", headers=employer.headers),
            await client.get(path, params={"version": 2}, headers=employer.headers),
        ]
        for response in refused:
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "/problems/document-not-found"
            assert content not in response.content
        held = await client.get(f"/v1/me/documents/{document_id}/content", headers=holder.headers)
        assert held.content == content

        # The employer's three downloads are in the holder's access log; the refusals not.
        entries = await wait_for_entries(client, holder, count=3)
        downloads = [entry for entry in entries if entry["outcome"] == "issuer_downloaded"]
        assert len(downloads) == 3, entries
        assert {(e["source"], e["venue"]) for e in downloads} == {
            ("document_opened", "Department 360100-acme")
        }
        assert all(f"document:{document_id}" in e["attributes"] for e in downloads)


class TestDeviceSignature:
    async def test_the_phone_signs_with_its_registered_key(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        phone_key = ec.generate_private_key(ec.SECP256R1())
        spki = phone_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        card = await issue_card(client, app)
        activated = await activate(client, card, device_public_key=base64.b64encode(spki).decode())
        assert activated.status_code == 201, activated.text
        holder = ActiveHolder(
            card, DEFAULT_PIN, "phone", activated.json()["access_token"], "unused"
        )
        employer = await hr_issuer(client, app, code="360100-acme")
        document_id, _, _ = await contract(client, employer, holder)

        view = (
            await client.get(f"/v1/me/documents/{document_id}/signature", headers=holder.headers)
        ).json()
        assert view["method"] == "device"
        statement = view["statement"]
        kid = f"device:{statement['device']}"
        pem = phone_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        phone = ECKey.import_key(pem)

        def phone_signs(payload: dict[str, object], key: ECKey = phone) -> str:
            return jose_jws.serialize_compact(
                {"alg": "ES256", "kid": kid, "typ": "ssc-document+jws"},
                rfc8785.dumps(payload),
                key,
            )

        missing = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin},
            headers=holder.headers,
        )
        assert missing.status_code == 422
        stranger = ECKey.generate_key("P-256")
        forged = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin, "signature": phone_signs(statement, stranger)},
            headers=holder.headers,
        )
        assert forged.status_code == 422
        assert forged.json()["type"] == "/problems/invalid-holder-signature"
        other_statement = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin, "signature": phone_signs({**statement, "version": 9})},
            headers=holder.headers,
        )
        assert other_statement.status_code == 422

        signed = await client.post(
            f"/v1/me/documents/{document_id}/signature",
            json={"pin": holder.pin, "signature": phone_signs(statement)},
            headers=bearer(holder.access_token),
        )
        assert signed.status_code == 201, signed.text
        detail = (
            await client.get(f"/v1/me/documents/{document_id}", headers=holder.headers)
        ).json()
        assert detail["holder_signature_kind"] == "device"
        public = ECKey.import_key(
            phone_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        verified = jose_jws.deserialize_compact(
            detail["holder_signature"], public, algorithms=["ES256"]
        )
        assert json.loads(verified.payload)["method"] == "device"
        jose_jws.deserialize_compact(
            detail["issuer_signature"], employer_key(employer), algorithms=["ES256"]
        )
        try:
            jose_jws.deserialize_compact(detail["holder_signature"], stranger, algorithms=["ES256"])
        except BadSignatureError:
            pass
        else:
            raise AssertionError("a stranger's key verified the holder's signature")


async def test_only_a_contract_is_signed(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await create_active_holder(client, app)
    issuer = await hr_issuer(client, app)
    content = pdf("certificate")
    pushed = await push(client, issuer, content, manifest(holder.card, content))
    response = await client.post(
        f"/v1/me/documents/{pushed.json()['id']}/signature",
        json={"pin": holder.pin},
        headers=holder.headers,
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/not-a-contract"
