"""Card applications, their decision by an administrator, and card issuance.

Personal data enters here and is sealed at once; the tables keep only sealed values and blind
indexes (`app.security.pii`). A person is found by the blind index of document type and number,
which is what enforces one card per person.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.documents import DocumentType, validate_document
from app.cards.errors import (
    ApplicationDecided,
    ApplicationExists,
    ApplicationNotFound,
    CardExists,
    InvalidApplication,
)
from app.cards.models import (
    ApplicationStatus,
    Card,
    CardApplication,
    CardStatus,
    HolderEntitlement,
    Person,
    utcnow,
)
from app.cards.numbers import (
    new_card_number,
    new_social_security_number,
    normalise_card_number,
)
from app.cards.snapshot import (
    AttributeView,
    CardSnapshot,
    GrantedEntitlement,
    card_key,
    publish_card_snapshot,
)
from app.cards.status_indexes import free_indexes, pool_entries
from app.errors import DomainError
from app.runtime import Runtime
from app.security.pii import PiiCipher, mask_name

COOPERATING_BANKS: Mapping[str, str] = {
    "ICBC": "Industrial and Commercial Bank of China",
    "CCB": "China Construction Bank",
    "ABC": "Agricultural Bank of China",
    "BOC": "Bank of China",
    "BOCOM": "Bank of Communications",
    "JXBANK": "Jiangxi Bank",
}
"""Banks that issue the financial account of a card; the holder chooses one when applying."""

NAME_MAX_CHARS = 64
MOBILE_PHONE = re.compile(r"1[3-9][0-9]{9}")
REGION_CODE = re.compile(r"[0-9A-Z]{2,12}")
_CJK_NAME = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f·•・]*"
)
_LATIN_NAME = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ .'\-]*")
AUTO_APPROVER = "system:auto-approval"
DUPLICATE_FOR_HOLDER = "application.duplicate_for_holder"
"""Audit action of an application for a person who already has a card; its subject is the card."""
_INSERT_ATTEMPTS = 16

# Sealed-field and blind-index names; changing one makes existing rows unreadable.
DOCUMENT_FIELD = "document"
DOCUMENT_NUMBER_FIELD = "document_number"
NAME_FIELD = "name"
PHONE_FIELD = "phone"
SSN_FIELD = "ssn"
BIRTH_DATE_FIELD = "birth_date"  # sealed as an ISO date (migration 0006 seals old rows alike)


class CardIssuanceFailed(DomainError):
    """Unique values kept colliding; practically impossible, so it is a server error."""

    code = "card-issuance-failed"
    title = "The card could not be issued"
    status = 500


@dataclass(frozen=True, slots=True)
class ApplicationForm:
    """What a citizen submits; validated by `submit_application`."""

    document_type: str
    document_number: str
    name: str
    phone: str
    bank_code: str
    region_code: str | None = None


@dataclass(frozen=True, slots=True)
class SubmittedApplication:
    """The recorded application and, with auto-approval on, the card issued for it."""

    application: CardApplication
    card: Card | None


def document_index(pii: PiiCipher, document_type: DocumentType | str, number: str) -> str:
    """The blind index a person is found by: document type and normalised number together."""
    return pii.blind_index(DOCUMENT_FIELD, f"{document_type}:{number}")


def normalise_name(name: str) -> str:
    """NFKC, trimmed, inner whitespace collapsed; Chinese or Latin script, 1 to 64 characters.

    :raises InvalidApplication: for an empty, too long or mixed/unknown-script name.
    """
    normal = " ".join(unicodedata.normalize("NFKC", name).split())
    if not 1 <= len(normal) <= NAME_MAX_CHARS:
        raise InvalidApplication(
            f"the name must have 1 to {NAME_MAX_CHARS} characters", field="name"
        )
    if not (_CJK_NAME.fullmatch(normal) or _LATIN_NAME.fullmatch(normal)):
        raise InvalidApplication(
            "the name must be written in Chinese characters (with · between parts) "
            "or in Latin letters, as on the identity document",
            field="name",
        )
    return normal


def normalise_phone(phone: str) -> str:
    """A mainland mobile number, 11 digits starting with 13-19 (spaces and +86 tolerated)."""
    digits = "".join(unicodedata.normalize("NFKC", phone).split()).removeprefix("+86")
    if not MOBILE_PHONE.fullmatch(digits):
        raise InvalidApplication(
            "the phone must be a mainland mobile number: 11 digits starting with 13 to 19",
            field="phone",
        )
    return digits


def _bank(code: str) -> str:
    bank = code.strip().upper()
    if bank not in COOPERATING_BANKS:
        raise InvalidApplication(
            f"{code[:16]!r} is not a cooperating bank; choose one of "
            + ", ".join(COOPERATING_BANKS),
            field="bank_code",
        )
    return bank


def _region(code: str | None, default: str) -> str:
    if code is None:
        return default
    if not REGION_CODE.fullmatch(code):
        raise InvalidApplication(
            "the region code is 2 to 12 characters of 0-9 and A-Z, e.g. 360000",
            field="region_code",
        )
    return code


async def submit_application(
    session: AsyncSession, runtime: Runtime, form: ApplicationForm
) -> SubmittedApplication:
    """Records an application and, with auto-approval on, issues the card at once.

    The applicant is anonymous, so the answer must not tell whether the person already has a
    card: an application for a card holder is accepted like any other (leaving the holder's
    recorded name and phone alone), audited as `application.duplicate_for_holder` with the
    card as subject (the holder's notice, `holder_notices`), never auto-approved, and settled
    in review, where approval refuses it (`CardExists`).

    :raises InvalidDocument, InvalidApplication: for bad input (422).
    :raises ApplicationExists: when the person has a pending application.
    """
    document = validate_document(form.document_type, form.document_number)
    name = normalise_name(form.name)
    phone = normalise_phone(form.phone)
    bank = _bank(form.bank_code)
    region = _region(form.region_code, runtime.settings.issuer)
    pii = runtime.pii
    index = document_index(pii, document.doc_type, document.number)

    person = (await session.exec(select(Person).where(Person.document_index == index))).first()
    holder_card: uuid.UUID | None = None
    if person is None:
        person = Person(
            document_type=document.doc_type.value,
            document_index=index,
            document_number_sealed=pii.seal(DOCUMENT_NUMBER_FIELD, document.number),
            name_sealed=pii.seal(NAME_FIELD, name),
            phone_sealed=pii.seal(PHONE_FIELD, phone),
            phone_index=pii.blind_index(PHONE_FIELD, phone),
            birth_date_sealed=seal_birth_date(pii, document.birth_date),
        )
        try:
            async with session.begin_nested():
                session.add(person)
        except IntegrityError:
            # Another request registered the same person a moment ago.
            raise ApplicationExists("an application for this person is already pending") from None
    else:
        await _refuse_pending_application(session, person)
        holder_card = await _existing_card(session, person)
        if holder_card is None:
            person.name_sealed = pii.seal(NAME_FIELD, name)
            person.phone_sealed = pii.seal(PHONE_FIELD, phone)
            person.phone_index = pii.blind_index(PHONE_FIELD, phone)
            session.add(person)

    application = CardApplication(person_id=person.id, bank_code=bank, region_code=region)
    session.add(application)
    await session.flush()
    await record(
        runtime.store,
        "application.submitted",
        "anonymous",
        str(application.id),
        {"document_type": document.doc_type.value, "bank": bank, "region": region},
    )
    if holder_card is not None:
        await record(
            runtime.store,
            DUPLICATE_FOR_HOLDER,
            "anonymous",
            str(holder_card),
            {"application": str(application.id), "bank": bank, "region": region},
        )
        return SubmittedApplication(application, None)
    card = None
    if runtime.settings.auto_approve_applications:
        card = await approve_application(session, runtime, application.id, AUTO_APPROVER)
    return SubmittedApplication(application, card)


async def _existing_card(session: AsyncSession, person: Person) -> uuid.UUID | None:
    return (await session.exec(select(Card.id).where(Card.person_id == person.id))).first()


async def _refuse_existing_card(session: AsyncSession, person: Person) -> None:
    if await _existing_card(session, person) is not None:
        raise CardExists(
            "this person already has a social security card: the application is a duplicate; "
            "reject it (the holder was notified)"
        )


async def _refuse_pending_application(session: AsyncSession, person: Person) -> None:
    pending = await session.exec(
        select(CardApplication.id).where(
            CardApplication.person_id == person.id,
            CardApplication.status == ApplicationStatus.pending,
        )
    )
    if pending.first() is not None:
        raise ApplicationExists("an application for this person is already pending")


async def _pending_application(session: AsyncSession, application_id: uuid.UUID) -> CardApplication:
    application = await session.get(CardApplication, application_id)
    if application is None:
        raise ApplicationNotFound(f"no card application {application_id}")
    if application.status != ApplicationStatus.pending:
        raise ApplicationDecided(
            f"the application was already {application.status}",
            application_status=application.status,
        )
    return application


async def approve_application(
    session: AsyncSession, runtime: Runtime, application_id: uuid.UUID, actor: str
) -> Card:
    """Issues the card of a pending application and makes it known to the verify path.

    :raises ApplicationNotFound: for an unknown id.
    :raises ApplicationDecided: when it was already approved or rejected.
    :raises CardExists: when the person got a card some other way meanwhile.
    """
    application = await _pending_application(session, application_id)
    person = await session.get(Person, application.person_id)
    assert person is not None, "applications reference their person"
    await _refuse_existing_card(session, person)
    card = await _issue_card(session, runtime, person, application)
    application.status = ApplicationStatus.approved
    application.decided_at = utcnow()
    application.decided_by = actor
    application.card_id = card.id
    session.add(application)
    await session.flush()
    snapshot = await load_card_snapshot(session, runtime.pii, card, person)
    await publish_card_snapshot(runtime.store, card.handle, snapshot)
    await record(
        runtime.store,
        "application.approved",
        actor,
        str(application.id),
        {"card_id": str(card.id), "region": card.region_code, "bank": card.bank_code},
    )
    return card


async def reject_application(
    session: AsyncSession,
    runtime: Runtime,
    application_id: uuid.UUID,
    actor: str,
    reason: str,
) -> CardApplication:
    """Refuses a pending application; the person may apply again later."""
    application = await _pending_application(session, application_id)
    application.status = ApplicationStatus.rejected
    application.decided_at = utcnow()
    application.decided_by = actor
    application.reject_reason = reason
    session.add(application)
    await session.flush()
    await record(
        runtime.store, "application.rejected", actor, str(application.id), {"reason": reason}
    )
    return application


async def _issue_card(
    session: AsyncSession, runtime: Runtime, person: Person, application: CardApplication
) -> Card:
    """Inserts the card with its pool of status list indexes, retrying with fresh values
    when a unique value collides.

    The pool's indexes are drawn at random from the status list's capacity, so neighbouring
    entries of the published list say nothing about when or where cards were issued (a
    sequential index would). A taken index (or card number) violates a unique constraint and
    the insert is retried inside a savepoint; keep the list at least twice as large as the
    number of cards times the pool size so retries stay rare (`app.cards.status_indexes`).
    """
    pii = runtime.pii
    settings = runtime.settings
    if person.document_type == DocumentType.resident_id:
        fixed_ssn: str | None = pii.open(DOCUMENT_NUMBER_FIELD, person.document_number_sealed)
    else:
        fixed_ssn = None
    for _ in range(_INSERT_ATTEMPTS):
        indexes = await free_indexes(session, settings.status_index_pool, settings.status_list_size)
        ssn = fixed_ssn or new_social_security_number()
        card = Card(
            person_id=person.id,
            card_number=new_card_number(application.region_code),
            ssn_sealed=pii.seal(SSN_FIELD, ssn),
            ssn_index=pii.blind_index(SSN_FIELD, ssn),
            region_code=application.region_code,
            bank_code=application.bank_code,
            handle=new_card_handle(),
            status_index=indexes[0],
            status=CardStatus.active,
        )
        try:
            async with session.begin_nested():
                session.add(card)
                await session.flush()
                session.add_all(pool_entries(card.id, indexes))
        except IntegrityError:
            continue
        return card
    raise CardIssuanceFailed("unique card values kept colliding; retry the approval")


def new_card_handle() -> str:
    """A card's handle (sealed into its QR tokens): 16 random bytes, hex."""
    return secrets.token_bytes(16).hex()


def card_snapshot(
    pii: PiiCipher,
    card: Card,
    person: Person,
    entitlements: Sequence[HolderEntitlement] = (),
) -> CardSnapshot:
    """What the verify path needs of a card: status, id, the masked name and the sealed
    attribute view (`app.cards.snapshot.AttributeView`) with the holder's `entitlements`."""
    name = pii.open(NAME_FIELD, person.name_sealed)
    view = AttributeView.of(
        full_name=name,
        document_type=person.document_type,
        document_number=pii.open(DOCUMENT_NUMBER_FIELD, person.document_number_sealed),
        birth_date=birth_date_of(pii, person),
        entitlements=tuple(
            GrantedEntitlement(granted.kind, _aware(granted.expires_at).timestamp())
            for granted in sorted(entitlements, key=lambda granted: granted.kind)
        ),
    )
    return CardSnapshot.of(
        CardStatus(card.status), card.id, mask_name(name), view.seal(pii, card.id)
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives timestamps back naive; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def holder_entitlements(
    session: AsyncSession, person_id: uuid.UUID
) -> Sequence[HolderEntitlement]:
    statement = select(HolderEntitlement).where(HolderEntitlement.person_id == person_id)
    return list(await session.exec(statement))


async def load_card_snapshot(
    session: AsyncSession, pii: PiiCipher, card: Card, person: Person
) -> CardSnapshot:
    """`card_snapshot` with the holder's entitlements read from the database."""
    return card_snapshot(pii, card, person, await holder_entitlements(session, person.id))


async def refill_card_snapshots(session: AsyncSession, runtime: Runtime) -> int:
    """Writes the snapshot of every card missing from the store; returns how many.

    Existing entries are left alone: they may be newer than this read of the database.
    """
    written = 0
    rows = await session.exec(select(Card, Person).where(Card.person_id == Person.id))
    for card, person in rows:
        if await runtime.store.get(card_key(card.handle)) is not None:
            continue
        snapshot = await load_card_snapshot(session, runtime.pii, card, person)
        await runtime.store.set(card_key(card.handle), snapshot.encode())
        written += 1
    return written


def seal_birth_date(pii: PiiCipher, born: date | None) -> bytes | None:
    return None if born is None else pii.seal(BIRTH_DATE_FIELD, born.isoformat())


def birth_date_of(pii: PiiCipher, person: Person) -> date | None:
    """The person's birth date, opened; None when their document states none."""
    if person.birth_date_sealed is None:
        return None
    return date.fromisoformat(pii.open(BIRTH_DATE_FIELD, person.birth_date_sealed))


async def find_card_by_number(session: AsyncSession, card_number: str) -> Card | None:
    normal = normalise_card_number(card_number)
    return (await session.exec(select(Card).where(Card.card_number == normal))).first()


async def find_card_by_document(
    session: AsyncSession, pii: PiiCipher, document_type: str, document_number: str
) -> Card | None:
    """The card of the person with this document, or None (also for a malformed number)."""
    try:
        document = validate_document(document_type, document_number)
    except DomainError:
        return None
    index = document_index(pii, document.doc_type, document.number)
    statement = select(Card).join(Person).where(Person.document_index == index)
    return (await session.exec(statement)).first()
