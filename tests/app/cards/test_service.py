"""Card applications and issuance: the rules, on both databases and both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from app.cards import numbers, service
from app.cards.documents import DocumentType
from app.cards.errors import ApplicationExists, CardExists, InvalidApplication
from app.cards.models import Card, Person
from app.cards.service import ApplicationForm
from app.cards.snapshot import CardSnapshot, card_key
from app.config import Settings
from app.runtime import Runtime
from app.security.pii import PiiCipher
from tests.factories import residence_permit, resident_id


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    started = await Runtime.start(settings)
    yield started
    await started.close()


def form(**overrides: str) -> ApplicationForm:
    values = {
        "document_type": "resident_id",
        "document_number": resident_id(),
        "name": "张小三",
        "phone": "13800138000",
        "bank_code": "ICBC",
    }
    values.update(overrides)
    return ApplicationForm(**values)


async def issue(runtime: Runtime, application_form: ApplicationForm) -> Card:
    async with runtime.database.session() as session:
        submitted = await service.submit_application(session, runtime, application_form)
        return await service.approve_application(
            session, runtime, submitted.application.id, "admin:test"
        )


class TestNumbers:
    def test_card_numbers_carry_region_and_check_digit(self) -> None:
        number = numbers.new_card_number("360000")
        assert number.startswith("36") and len(number) == 12
        assert numbers.is_valid_card_number(number)
        typo = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]
        assert not numbers.is_valid_card_number(typo)

    def test_letter_regions_get_iban_values_in_the_check_digit(self) -> None:
        assert numbers.is_valid_card_number(numbers.new_card_number("GZ0001"))

    def test_generated_ssns_cannot_equal_a_document_number(self) -> None:
        ssn = numbers.new_social_security_number()
        assert ssn.startswith("0") and len(ssn) == 18


class TestApplicationRules:
    @pytest.mark.parametrize(
        ("raw", "normal"),
        [("  张小三 ", "张小三"), ("买买提·艾力", "买买提·艾力"), ("john  smith", "john smith")],
    )
    def test_names_are_normalised(self, raw: str, normal: str) -> None:
        assert service.normalise_name(raw) == normal

    @pytest.mark.parametrize("name", ["", "x" * 65, "张三 Smith", "Ivan3", "😀"])
    def test_bad_names_are_refused(self, name: str) -> None:
        with pytest.raises(InvalidApplication) as refused:
            service.normalise_name(name)
        assert refused.value.field == "name"

    def test_phones_tolerate_spaces_and_country_code(self) -> None:
        assert service.normalise_phone("+86 138 0013 8000") == "13800138000"

    def test_document_index_ignores_case(self, settings: Settings) -> None:
        pii = PiiCipher.from_master_key(settings.secret("data_key"))
        number = "11010519491231002X"
        assert service.document_index(pii, DocumentType.resident_id, number) == (
            service.document_index(pii, "resident_id", number.lower())
        )


class TestIssuance:
    async def test_a_resident_id_is_the_social_security_number(self, runtime: Runtime) -> None:
        document_number = resident_id()
        card = await issue(runtime, form(document_number=document_number))
        assert runtime.pii.open(service.SSN_FIELD, card.ssn_sealed) == document_number

    async def test_other_documents_get_a_generated_number(self, runtime: Runtime) -> None:
        permit = residence_permit()
        card = await issue(
            runtime,
            form(document_type="hk_macau_tw_residence_permit", document_number=permit),
        )
        ssn = runtime.pii.open(service.SSN_FIELD, card.ssn_sealed)
        assert ssn != permit and ssn.startswith("0")

    async def test_a_colliding_card_number_is_retried(
        self, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        taken = (await issue(runtime, form())).card_number
        fresh = numbers.new_card_number("360000")
        proposals = iter([taken, fresh])
        monkeypatch.setattr(service, "new_card_number", lambda region: next(proposals))
        card = await issue(runtime, form())
        assert card.card_number == fresh

    async def test_one_card_per_person(self, runtime: Runtime) -> None:
        """A second application is accepted (the applicant learns nothing) but never approved."""
        document_number = resident_id()
        await issue(runtime, form(document_number=document_number))
        async with runtime.database.session() as session:
            duplicate = await service.submit_application(
                session, runtime, form(document_number=document_number)
            )
        assert duplicate.card is None
        async with runtime.database.session() as session:
            with pytest.raises(CardExists):
                await service.approve_application(
                    session, runtime, duplicate.application.id, "admin:test"
                )

    async def test_a_pending_application_blocks_another(self, runtime: Runtime) -> None:
        document_number = resident_id()
        async with runtime.database.session() as session:
            await service.submit_application(
                session, runtime, form(document_number=document_number)
            )
        async with runtime.database.session() as session:
            with pytest.raises(ApplicationExists):
                await service.submit_application(
                    session, runtime, form(document_number=document_number)
                )


class TestSnapshotRefill:
    async def test_missing_snapshots_are_written_and_present_ones_kept(
        self, runtime: Runtime
    ) -> None:
        lost = await issue(runtime, form(name="王五"))
        kept = await issue(runtime, form(name="赵六"))
        await runtime.store.delete(card_key(lost.handle))
        marker = b"active|" + kept.id.hex.encode() + b"|newer"
        await runtime.store.set(card_key(kept.handle), marker)
        async with runtime.database.session() as session:
            written = await service.refill_card_snapshots(session, runtime)
            persons = (await session.exec(select(Person))).all()
        assert written == 1
        assert len(persons) == 2
        refilled = await runtime.store.get(card_key(lost.handle))
        assert refilled is not None
        assert CardSnapshot.decode(refilled).masked_name == "王*"
        assert await runtime.store.get(card_key(kept.handle)) == marker
