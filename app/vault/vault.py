"""The vault's process-wide pieces: the blob store and the master keys (built at start)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from app.config import Settings, parse_master_keys
from app.vault.blobs import BlobStore, LocalBlobStore
from app.vault.s3 import S3BlobStore
from token_service.envelope import (
    EnvelopeError,
    MasterKeys,
    WrappedKey,
    new_data_key,
    open_stream,
    seal_stream,
)

DEFAULT_MASTER_KEY_ID = "k0"


def build_blob_store(settings: Settings) -> BlobStore:
    if not settings.vault_s3_url:
        return LocalBlobStore(settings.vault_directory)
    parts = urlsplit(settings.vault_s3_url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    access = settings.vault_s3_access_key
    secret = settings.vault_s3_secret_key
    return S3BlobStore(
        parts.netloc,
        endpoint_url=query.get("endpoint"),
        region=query.get("region"),
        prefix=query.get("prefix", ""),
        access_key=access.get_secret_value() if access else None,
        secret_key=secret.get_secret_value() if secret else None,
    )


def build_master_keys(settings: Settings, derived_default: bytes) -> MasterKeys:
    """SSC_VAULT_MASTER_KEYS (the first wraps new data keys), else one key derived from
    SSC_DATA_KEY under the id `k0`."""
    if settings.vault_master_keys is None:
        return MasterKeys({DEFAULT_MASTER_KEY_ID: derived_default}, DEFAULT_MASTER_KEY_ID)
    keys = parse_master_keys(settings.vault_master_keys.get_secret_value())
    return MasterKeys(keys, next(iter(keys)))


@dataclass(frozen=True, slots=True)
class SealedBlob:
    blob_key: str
    key_id: str
    wrapped_key: bytes


def context_of(document_id: uuid.UUID) -> bytes:
    """What a document's blob and wrapped key are bound to."""
    return b"ssc/vault/document/" + document_id.bytes


@dataclass
class Vault:
    blobs: BlobStore
    master_keys: MasterKeys

    async def seal_into_store(
        self, document_id: uuid.UUID, plaintext: AsyncIterable[bytes]
    ) -> SealedBlob:
        """Encrypts the stream under a fresh data key into a new blob (whole or not at all)."""
        data_key = new_data_key()
        context = context_of(document_id)
        wrapped = self.master_keys.wrap(data_key, context)
        blob_key = uuid.uuid4().hex
        await self.blobs.put(blob_key, seal_stream(data_key, plaintext, context))
        return SealedBlob(blob_key, wrapped.key_id, wrapped.wrapped)

    def data_key(self, document_id: uuid.UUID, key_id: str, wrapped: bytes) -> bytes:
        """:raises EnvelopeError:"""
        return self.master_keys.unwrap(WrappedKey(key_id, wrapped), context_of(document_id))

    def plaintext(
        self, document_id: uuid.UUID, blob_key: str, data_key: bytes
    ) -> AsyncIterator[bytes]:
        """The decrypted file, chunk by chunk (each authenticated before it is handed out)."""
        return open_stream(data_key, self.blobs.read(blob_key), context_of(document_id))

    async def close(self) -> None:
        await self.blobs.close()


__all__ = ["EnvelopeError", "SealedBlob", "Vault", "build_blob_store", "build_master_keys"]
