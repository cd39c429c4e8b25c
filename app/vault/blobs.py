"""Where the sealed files live: one `BlobStore` interface, a local directory by default.

A blob is written whole or not at all: `put` consumes a stream and makes the blob visible
only once every byte is stored (a temporary file renamed into place; an S3 multipart upload
completed), so an upload interrupted half-way leaves no blob, only possibly a temporary
file that `sweep_temporary` removes. The vault writes the blob first and commits the
document's row after; a blob whose row never committed is an orphan, removed by the
sweeper (`app.vault.service.sweep_orphans`) once it is older than a grace period.

Both implementations pass one contract suite (`tests/app/vault/test_blobs.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.vault.errors import BlobNotFound, BlobStoreUnavailable

READ_BYTES = 256 * 1024
"""How much is read from a stored blob at a time (also the S3 stream's read size)."""
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TEMPORARY_DIR = ".incoming"


def check_key(key: str) -> str:
    """Blob keys are flat names of safe characters (no path separators, no dot first)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a valid blob key: {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    modified_at: float
    """Seconds since the epoch."""


class BlobStore(Protocol):
    """Stores opaque byte streams under flat keys."""

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        """Stores the whole stream under `key` (replacing any blob there) and returns its
        size; visible only when complete. An exception raised by `data` propagates and
        leaves no blob under `key`.

        :raises BlobStoreUnavailable:"""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, piece by piece.

        :raises BlobNotFound: (on the first iteration)
        :raises BlobStoreUnavailable:"""
        ...

    async def delete(self, key: str) -> None:
        """Removes the blob; no error when there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    def listing(self) -> AsyncIterator[BlobInfo]:
        """Every stored blob (not the temporary pieces of unfinished uploads)."""
        ...

    async def sweep_temporary(self, older_than: float) -> int:
        """Removes the leftovers of uploads interrupted more than `older_than` seconds ago;
        returns how many."""
        ...

    async def close(self) -> None: ...


class LocalBlobStore:
    """Blobs as files under a directory (`SSC_VAULT_DIR`), two levels of fan-out by key.

    Writes go to `.incoming/<random>.part`, are flushed to disk (`fsync`) and renamed into
    place, so a reader never sees a partial file and a crash leaves at most a `.part` file.
    File I/O runs in worker threads, one piece at a time: the event loop never blocks on the
    disk, and memory holds one piece.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / _TEMPORARY_DIR

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        final = self._path(key)
        try:
            await asyncio.to_thread(self._incoming.mkdir, parents=True, exist_ok=True)
            temporary = self._incoming / f"{uuid.uuid4().hex}.part"
            handle = await asyncio.to_thread(open, temporary, "wb")
        except OSError as error:
            raise BlobStoreUnavailable(f"the document store cannot be written: {error}") from error
        size = 0
        completed = False
        try:
            async for piece in data:
                await asyncio.to_thread(handle.write, piece)
                size += len(piece)
            await asyncio.to_thread(_flush, handle)
            handle.close()
            await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(os.replace, temporary, final)
            completed = True
        except OSError as error:
            raise BlobStoreUnavailable(f"the document store cannot be written: {error}") from error
        finally:
            if not completed:
                handle.close()
                await asyncio.to_thread(_unlink, temporary)
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no stored blob {key!r}") from None
        except OSError as error:
            raise BlobStoreUnavailable(f"the document store cannot be read: {error}") from error
        try:
            while True:
                try:
                    piece = await asyncio.to_thread(handle.read, READ_BYTES)
                except OSError as error:
                    raise BlobStoreUnavailable(
                        f"the document store cannot be read: {error}"
                    ) from error
                if not piece:
                    return
                yield piece
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(_unlink, self._path(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def listing(self) -> AsyncIterator[BlobInfo]:
        infos = await asyncio.to_thread(self._scan)
        for info in infos:
            yield info

    def _scan(self) -> list[BlobInfo]:
        found: list[BlobInfo] = []
        if not self.root.is_dir():
            return found
        for fan_out in self.root.iterdir():
            if fan_out.name == _TEMPORARY_DIR or not fan_out.is_dir():
                continue
            for path in fan_out.iterdir():
                if _KEY.fullmatch(path.name) and path.is_file():
                    stat = path.stat()
                    found.append(BlobInfo(path.name, stat.st_size, stat.st_mtime))
        return found

    async def sweep_temporary(self, older_than: float) -> int:
        def sweep() -> int:
            if not self._incoming.is_dir():
                return 0
            cutoff = time.time() - older_than
            removed = 0
            for path in self._incoming.iterdir():
                if path.stat().st_mtime < cutoff:
                    _unlink(path)
                    removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    async def close(self) -> None:
        return None


def _flush(handle: object) -> None:
    handle.flush()  # type: ignore[attr-defined]
    os.fsync(handle.fileno())  # type: ignore[attr-defined]


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
