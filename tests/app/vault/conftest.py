"""Blob stores for the vault's contract suite: the local directory and an S3-compatible
server (moto's server mode, started here on a free port of its own)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from app.vault.blobs import BlobStore, LocalBlobStore
from app.vault.s3 import S3BlobStore
from tests.servers import free_port

S3_KEY = "test-access-key"
S3_SECRET = "test-secret-key"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in this test process (a thread), on a port of its own."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.get(f"{endpoint}/moto-api/", timeout=10)
    yield endpoint
    server.stop()


async def s3_store(endpoint: str) -> S3BlobStore:
    store = S3BlobStore(
        f"vault-{uuid.uuid4().hex[:12]}",
        endpoint_url=endpoint,
        access_key=S3_KEY,
        secret_key=S3_SECRET,
    )
    await store.ensure_bucket()
    return store


@pytest.fixture(params=["local", "s3"])
async def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store: BlobStore
    if request.param == "local":
        store = LocalBlobStore(tmp_path / "blobs")
    else:
        store = await s3_store(request.getfixturevalue("s3_endpoint"))
    yield store
    await store.close()
