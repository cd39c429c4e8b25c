"""Errors of issuers, their keys and the signed documents they push."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, InvalidRequest, NotFound


class IssuerNotFound(NotFound):
    code = "issuer-not-found"
    title = "No such issuer"


class IssuerKeyNotFound(NotFound):
    code = "issuer-key-not-found"
    title = "No such key of this issuer"


class IssuerExists(Conflict):
    code = "issuer-exists"
    title = "An issuer with this code exists"


class IssuerKeyExists(Conflict):
    code = "issuer-key-exists"
    title = "The issuer has a key with this kid"


class IssuerKeyRevoked(Conflict):
    code = "issuer-key-revoked"
    title = "The key is revoked"


class InvalidIssuerKey(InvalidRequest):
    code = "invalid-issuer-key"
    title = "Not an acceptable public JWK"


class UnknownDocumentType(InvalidRequest):
    code = "unknown-document-type"
    title = "Unknown document type"


class TypeNotIssued(Forbidden):
    """The issuer (or its token) may not push documents of this type."""

    code = "document-type-not-allowed"
    title = "The issuer may not issue this document type"


class SignatureRejected(InvalidRequest):
    """A signed document that does not verify against the issuer's keys; `reason` is the
    `token_service.jws` code (malformed, not_canonical, algorithm_not_allowed, unknown_key,
    bad_signature) or `key_revoked` / `key_retired`."""

    code = "signature-rejected"
    title = "The document's signature is not accepted"
