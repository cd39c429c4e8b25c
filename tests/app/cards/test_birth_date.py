"""The birth date is personal data: stored only sealed, like name and document number, and
migration 0006 seals the plaintext values of older databases without losing any."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from app.cards import service
from app.cards.models import Person
from app.config import Settings
from app.db import Database, downgrade, migrate
from app.runtime import Runtime
from app.security.pii import PiiCipher
from tests.factories import resident_id

BORN = date(1987, 6, 5)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    started = await Runtime.start(settings)
    yield started
    await started.close()


async def raw_persons(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT * FROM persons"))).mappings().all()
    return [dict(row) for row in rows]


def plaintext_forms(born: date) -> list[bytes]:
    return [form.encode() for form in (born.isoformat(), f"{born:%Y%m%d}", f"{born:%Y/%m/%d}")]


async def test_the_database_holds_no_plaintext_birth_date_and_it_reads_back(
    runtime: Runtime,
) -> None:
    async with runtime.database.session() as session:
        submitted = await service.submit_application(
            session,
            runtime,
            service.ApplicationForm(
                document_type="resident_id",
                document_number=resident_id(BORN),
                name="张小三",
                phone="13800138000",
                bank_code="ICBC",
            ),
        )
    rows = await raw_persons(runtime.database)
    assert len(rows) == 1
    assert "birth_date" not in rows[0]
    stored = b"|".join(
        value if isinstance(value, bytes) else str(value).encode() for value in rows[0].values()
    )
    # the document number states the birth date too: it is sealed as well
    for plaintext in plaintext_forms(BORN):
        assert plaintext not in stored
    async with runtime.database.session() as session:
        person = (
            await session.exec(select(Person).where(Person.id == submitted.application.person_id))
        ).one()
    assert service.birth_date_of(runtime.pii, person) == BORN


async def test_a_document_without_a_birth_date_stores_none(runtime: Runtime) -> None:
    person = Person(
        document_type="resident_id",
        document_index=uuid.uuid4().hex,
        document_number_sealed=b"x",
        name_sealed=b"x",
        phone_sealed=b"x",
        phone_index=uuid.uuid4().hex,
        birth_date_sealed=service.seal_birth_date(runtime.pii, None),
    )
    assert service.birth_date_of(runtime.pii, person) is None


# --- migration 0006 on a database that holds plaintext birth dates ---------------------------

persons_at_0005 = sa.table(
    "persons",
    sa.column("id", sa.Uuid()),
    sa.column("document_type", sa.String()),
    sa.column("document_index", sa.String()),
    sa.column("document_number_sealed", sa.LargeBinary()),
    sa.column("name_sealed", sa.LargeBinary()),
    sa.column("phone_sealed", sa.LargeBinary()),
    sa.column("phone_index", sa.String()),
    sa.column("birth_date", sa.Date()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


async def database_at_0005(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A database migrated to 0005 with one person born on BORN and one without a date."""
    await migrate(url, "0005_trust")
    dated, undated = uuid.uuid4(), uuid.uuid4()
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            for person_id, born in ((dated, BORN), (undated, None)):
                await connection.execute(
                    persons_at_0005.insert().values(
                        id=person_id,
                        document_type="resident_id",
                        document_index=uuid.uuid4().hex,
                        document_number_sealed=b"sealed",
                        name_sealed=b"sealed",
                        phone_sealed=b"sealed",
                        phone_index=uuid.uuid4().hex,
                        birth_date=born,
                        created_at=datetime.now(UTC),
                    )
                )
    finally:
        await database.dispose()
    return dated, undated


async def version(database: Database) -> str:
    async with database.engine.connect() as connection:
        found: str = (
            await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        ).scalar_one()
    return found


async def test_migration_seals_existing_plaintext_birth_dates(empty_database_url: str) -> None:
    dated, undated = await database_at_0005(empty_database_url)
    data_key = secrets.token_bytes(32)
    pii = PiiCipher.from_master_key(data_key)
    await migrate(empty_database_url, pii=pii)
    database = Database(empty_database_url)
    try:
        rows = {uuid.UUID(str(row["id"])): row for row in await raw_persons(database)}
        assert all("birth_date" not in row for row in rows.values())
        assert rows[undated]["birth_date_sealed"] is None
        sealed = rows[dated]["birth_date_sealed"]
        assert isinstance(sealed, bytes)
        for plaintext in plaintext_forms(BORN):
            assert plaintext not in sealed
        async with database.session() as session:
            person = (await session.exec(select(Person).where(Person.id == dated))).one()
        # the application reads it with the same key and field
        assert service.birth_date_of(PiiCipher.from_master_key(data_key), person) == BORN
    finally:
        await database.dispose()

    # and the downgrade gives the plaintext back
    await downgrade(empty_database_url, "0005_trust", pii=pii)
    database = Database(empty_database_url)
    try:
        restored = {uuid.UUID(str(row["id"])): row for row in await raw_persons(database)}
    finally:
        await database.dispose()
    assert str(restored[dated]["birth_date"]) == BORN.isoformat()
    assert restored[undated]["birth_date"] is None


async def test_without_the_data_key_the_migration_refuses_and_loses_nothing(
    empty_database_url: str,
) -> None:
    dated, _ = await database_at_0005(empty_database_url)
    with pytest.raises(RuntimeError, match="needs the data key"):
        await migrate(empty_database_url)
    database = Database(empty_database_url)
    try:
        rows = {uuid.UUID(str(row["id"])): row for row in await raw_persons(database)}
        assert str(rows[dated]["birth_date"]) == BORN.isoformat()
        assert "birth_date_sealed" not in rows[dated]
        assert await version(database) == "0005_trust"
    finally:
        await database.dispose()
