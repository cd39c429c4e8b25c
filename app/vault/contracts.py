"""Electronic labour contracts: the employer pushes the contract signed (its manifest's JWS);
the holder reviews it and signs too, confirming with the PIN.

What the holder signs is an acceptance statement (`acceptance`): the contract's document id,
issuer, version, the SHA-256 of the file and of the employer's signature, as RFC 8785
canonical JSON in a JWS (`token_service.jws`, the issuers' format), so any JOSE library
verifies it. Two ways, said in the statement (`method`) and in the record:

- `device`: the holder's phone registered a P-256 key at activation; the phone signs the
  statement (ES256, kid `device:<device id>`) and sends the JWS; we verify it with the
  registered key. The phone fetches the exact statement from `GET .../signature` first.
- `server`: the phone registered no key; we sign the statement on the holder's behalf with
  the service's key (ES256, a key of `/.well-known/jwks.json`), bound to the session that
  confirmed the PIN (its session family and device are in the statement).

Either party then reads both signatures (the holder at `/v1/me/documents/{id}`, the employer
at `/v1/documents/{document_id}`) and can verify them independently.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card, Device, utcnow
from app.errors import DomainError
from app.holders.service import check_holder_pin, holder_card_and_device
from app.runtime import Runtime
from app.security.principals import HolderPrincipal
from app.vault import service
from app.vault.errors import ContractAlreadySigned, InvalidHolderSignature, NotAContract
from app.vault.models import DocumentStatus, HolderSignatureKind, VaultDocument
from app.vault.types import DOCUMENT_TYPES
from token_service.jws import JwsError, parse_jwk, public_jwk, sign_document, verify_document
from token_service.keys import b64url

ACCEPTANCE_TYPE = "ssc-labour-contract-acceptance"
CONTRACT_SIGNED = "vault.contract_signed"


def device_kid(device: Device) -> str:
    return f"device:{device.id}"


def acceptance(
    document: VaultDocument,
    employer_signature: str,
    *,
    card: Card,
    device: Device,
    method: HolderSignatureKind,
    session_family: uuid.UUID | None,
) -> dict[str, Any]:
    """The statement the holder signs (no personal data: ids and digests only)."""
    statement: dict[str, Any] = {
        "type": ACCEPTANCE_TYPE,
        "document": str(document.id),
        "issuer": document.issuer,
        "issuer_document_id": document.issuer_document_id,
        "version": document.version,
        "content_sha256": document.sha256,
        "employer_signature_sha256": hashlib.sha256(employer_signature.encode()).hexdigest(),
        "card": str(card.id),
        "method": method.value,
        "device": str(device.id),
    }
    if method is HolderSignatureKind.server:
        statement["session"] = str(session_family) if session_family is not None else None
        statement["pin_confirmed"] = True
    return statement


def _method(device: Device) -> HolderSignatureKind:
    return HolderSignatureKind.device if device.public_key else HolderSignatureKind.server


@dataclass(frozen=True, slots=True)
class SignatureView:
    document: VaultDocument
    method: HolderSignatureKind
    statement: dict[str, Any]
    signature: str | None


async def _contract(
    session: AsyncSession, holder: HolderPrincipal, document_id: uuid.UUID
) -> tuple[VaultDocument, Card, Device]:
    document = await service.holder_document(session, holder, document_id)
    kind = DOCUMENT_TYPES.get(document.doc_type)
    if kind is None or not kind.holder_signs:
        raise NotAContract("only a labour contract is signed by its holder")
    card, device = await holder_card_and_device(session, holder)
    return document, card, device


async def signature_view(
    runtime: Runtime, holder: HolderPrincipal, document_id: uuid.UUID
) -> SignatureView:
    """What this phone would sign (or what was signed)."""
    async with runtime.database.session() as session:
        document, card, device = await _contract(session, holder, document_id)
    method = _method(device)
    statement = acceptance(
        document,
        service.issuer_signature(runtime, document),
        card=card,
        device=device,
        method=method,
        session_family=holder.family,
    )
    return SignatureView(document, method, statement, service.holder_signature(runtime, document))


async def sign_contract(
    runtime: Runtime,
    holder: HolderPrincipal,
    document_id: uuid.UUID,
    *,
    pin: str,
    device_signature: str | None,
) -> VaultDocument:
    """The holder signs: PIN first (a wrong one counts towards the lockout), then the
    signature made on the phone, or ours on the holder's behalf when the phone has no key.

    :raises NotAContract: (422)
    :raises ContractAlreadySigned, DocumentRevoked: (409)
    :raises InvalidCredentials, PinLocked: wrong or locked PIN (401, 423)
    :raises InvalidHolderSignature: (422) missing, malformed, another statement, bad signature.
    """
    async with runtime.database.session() as session:
        outcome = await _sign(
            session, runtime, holder, document_id, pin=pin, device_signature=device_signature
        )
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _sign(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    document_id: uuid.UUID,
    *,
    pin: str,
    device_signature: str | None,
) -> VaultDocument | DomainError:
    document, card, device = await _contract(session, holder, document_id)
    await session.refresh(document, with_for_update=True)
    if document.holder_signature_sealed is not None:
        raise ContractAlreadySigned("you have signed this contract already")
    if document.status != DocumentStatus.valid or not document.current:
        raise ContractAlreadySigned(f"this contract is {document.status}; it cannot be signed")
    method = _method(device)
    if method is HolderSignatureKind.device and device_signature is None:
        raise InvalidHolderSignature(
            "your phone registered a key: sign the statement of GET .../signature with it"
        )
    refusal = await check_holder_pin(session, runtime, card, pin, "vault.contract_sign")
    if refusal is not None:
        return refusal
    statement = acceptance(
        document,
        service.issuer_signature(runtime, document),
        card=card,
        device=device,
        method=method,
        session_family=holder.family,
    )
    if method is HolderSignatureKind.device:
        assert device_signature is not None and device.public_key is not None
        signature = _verified_device_signature(device, device_signature, statement)
    else:
        key = runtime.keyring.signing_key
        signature = sign_document(statement, key.private_key, b64url(key.kid))
    document.holder_signature_sealed = runtime.pii.seal(
        f"{service.HOLDER_SIGNATURE_FIELD}/{document.id}", signature
    )
    document.holder_signature_kind = method.value
    document.holder_signed_at = utcnow()
    session.add(document)
    await session.flush()
    await record(
        runtime.store,
        CONTRACT_SIGNED,
        f"holder:{card.id}",
        str(card.id),
        {"document": str(document.id), "method": method.value, "device": str(device.id)},
    )
    return document


def device_jwk(device: Device) -> dict[str, str]:
    """The device's registered P-256 key as a JWK (kid `device:<id>`)."""
    assert device.public_key is not None
    key = serialization.load_der_public_key(base64.b64decode(device.public_key))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return public_jwk(key, device_kid(device))


def _verified_device_signature(device: Device, compact: str, statement: dict[str, Any]) -> str:
    try:
        verified = verify_document(compact, {device_kid(device): parse_jwk(device_jwk(device))})
    except JwsError as error:
        raise InvalidHolderSignature(
            f"the signature does not verify with your phone's key: {error.detail}",
            reason=error.code,
        ) from None
    if verified.payload != statement:
        raise InvalidHolderSignature("the signed statement is not this contract's")
    return compact
