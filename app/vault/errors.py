"""Errors of the document vault; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)


class BlobStoreUnavailable(ServiceUnavailable):
    """The blob store (directory or S3-compatible service) cannot be reached: nothing stored."""

    code = "blob-store-unavailable"
    title = "Document store temporarily unavailable"


class BlobNotFound(NotFound):
    code = "blob-not-found"
    title = "Stored file not found"


class DocumentNotFound(NotFound):
    code = "document-not-found"
    title = "Document not found"


class DocumentTooLarge(DomainError):
    code = "document-too-large"
    title = "Document too large"
    status = 413


class UnsupportedContent(DomainError):
    """The file is not one of the accepted kinds (PDF, OFD, JSON), judged by its bytes."""

    code = "unsupported-content"
    title = "Unsupported document content"
    status = 415


class InvalidDocument(InvalidRequest):
    code = "invalid-vault-document"
    title = "The document is not valid"


class ContentMismatch(InvalidRequest):
    """The uploaded bytes are not the ones the issuer signed (hash or size differs), or the
    upload ended early."""

    code = "content-mismatch"
    title = "The uploaded content does not match its signed manifest"


class IncompleteUpload(InvalidRequest):
    code = "incomplete-upload"
    title = "The upload ended before the whole file arrived"


class DuplicateDocument(Conflict):
    code = "duplicate-document"
    title = "A different document with this id and version exists"


class StaleVersion(Conflict):
    code = "stale-version"
    title = "A newer version of this document exists"


class DocumentRevoked(Conflict):
    code = "document-revoked"
    title = "The document was revoked"


class ShareNotFound(NotFound):
    """Unknown, expired, revoked or used up: a recipient is not told which."""

    code = "share-not-found"
    title = "Share not found or no longer valid"


class NotAContract(InvalidRequest):
    code = "not-a-contract"
    title = "Only a labour contract is signed by its holder"


class ContractAlreadySigned(Conflict):
    code = "contract-already-signed"
    title = "You have already signed this contract"


class InvalidHolderSignature(InvalidRequest):
    code = "invalid-holder-signature"
    title = "The signature is not a valid signature of this contract by your device"


class CorruptDocument(DomainError):
    """A stored file failed to decrypt or authenticate: tampering or a lost master key."""

    code = "document-corrupt"
    title = "The stored document cannot be opened"
    status = 500


class IssuerNotAllowed(Forbidden):
    code = "issuer-not-allowed"
    title = "This issuer may not issue this document type"


class UnknownHolder(NotFound):
    """No card holder has the identity document the manifest names: never a guess."""

    code = "unknown-holder"
    title = "No holder with this identity document"
