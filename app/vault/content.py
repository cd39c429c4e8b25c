"""What a file is, from its first bytes (never from what the uploader says), and the checks
made while it streams in: size limit, kind, SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from app.vault.errors import DocumentTooLarge, UnsupportedContent

PDF = "application/pdf"
OFD = "application/ofd"
JSON = "application/json"
CONTENT_TYPES = (PDF, OFD, JSON)
SNIFF_BYTES = 64 * 1024
_JSON_WHITESPACE = b" \t\r\n"


def sniff(head: bytes) -> str | None:
    """The kind of a file from its first bytes: PDF (`%PDF-`), OFD (a zip, GB/T 33190, with
    its `OFD.xml` entry among the first), JSON (an object or array, optional BOM); else None."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04") and b"OFD.xml" in head:
        return OFD
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip(_JSON_WHITESPACE)
    if stripped[:1] in (b"{", b"["):
        return JSON
    return None


class Inspected:
    """Passes a stream through, refusing it past `limit` bytes or when its first bytes are
    not of `declared` kind; `sha256` and `size` are final once the stream is consumed."""

    def __init__(self, source: AsyncIterable[bytes], declared: str, limit: int) -> None:
        self._source = source
        self.declared = declared
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _check(self, head: bytes) -> None:
        found = sniff(head)
        if found is None:
            raise UnsupportedContent(
                "the file is not a PDF, OFD or JSON document (judged by its first bytes)",
                accepted=list(CONTENT_TYPES),
            )
        if found != self.declared:
            raise UnsupportedContent(
                f"the file is {found} by its bytes, not {self.declared} as declared",
                accepted=list(CONTENT_TYPES),
            )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = bytearray()
        checked = False
        async for piece in self._source:
            self.size += len(piece)
            if self.size > self.limit:
                raise DocumentTooLarge(
                    f"a document has at most {self.limit} bytes", limit=self.limit
                )
            self._hash.update(piece)
            if checked:
                yield piece
                continue
            head += piece
            if len(head) >= SNIFF_BYTES:
                self._check(bytes(head))
                checked = True
                yield bytes(head)
                head.clear()
        if not checked:
            self._check(bytes(head))
            if head:
                yield bytes(head)
