"""The service on the S3-compatible store (moto's server): push and download through the API,
the bucket holding only ciphertext."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from app.config import Settings
from app.vault.s3 import S3BlobStore
from tests.app.vault.conftest import S3_KEY, S3_SECRET
from tests.factories import create_active_holder
from tests.vault_support import hr_issuer, manifest, pdf, plaintext_in, push


@pytest.fixture
async def s3_app(
    settings: Settings, s3_endpoint: str
) -> AsyncIterator[tuple[FastAPI, S3BlobStore]]:
    bucket = f"vault-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(bucket, endpoint_url=s3_endpoint, access_key=S3_KEY, secret_key=S3_SECRET)
    await store.ensure_bucket()
    configured = settings.model_copy(
        update={
            "vault_s3_url": f"s3://{bucket}?endpoint={s3_endpoint}&prefix=docs-",
            "vault_s3_access_key": SecretStr(S3_KEY),
            "vault_s3_secret_key": SecretStr(S3_SECRET),
        }
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application, store
    await store.close()


async def test_round_trip_on_s3(s3_app: tuple[FastAPI, S3BlobStore]) -> None:
    app, bucket = s3_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        holder = await create_active_holder(client, app)
        issuer = await hr_issuer(client, app)
        marker = f"S3-BODY-{uuid.uuid4().hex}"
        content = pdf(marker, 200_000)
        pushed = await push(client, issuer, content, manifest(holder.card, content))
        assert pushed.status_code == 201, pushed.text
        download = await client.get(
            f"/v1/me/documents/{pushed.json()['id']}/content", headers=holder.headers
        )
        assert download.content == content
    client_s3 = await bucket._s3()
    listed = await client_s3.list_objects_v2(Bucket=bucket.bucket)
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("docs-")
    stored = await client_s3.get_object(Bucket=bucket.bucket, Key=keys[0])
    body = await stored["Body"].read()
    assert plaintext_in(body, [marker, holder.card.document_number]) == []
