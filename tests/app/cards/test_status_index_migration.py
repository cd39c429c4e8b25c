"""Migration 0008: each existing card's one status index becomes its pool of one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.db import Database, downgrade, migrate

persons = sa.table(
    "persons",
    sa.column("id", sa.Uuid()),
    sa.column("document_type", sa.String()),
    sa.column("document_index", sa.String()),
    sa.column("document_number_sealed", sa.LargeBinary()),
    sa.column("name_sealed", sa.LargeBinary()),
    sa.column("phone_sealed", sa.LargeBinary()),
    sa.column("phone_index", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
cards = sa.table(
    "cards",
    sa.column("id", sa.Uuid()),
    sa.column("person_id", sa.Uuid()),
    sa.column("card_number", sa.String()),
    sa.column("ssn_sealed", sa.LargeBinary()),
    sa.column("ssn_index", sa.String()),
    sa.column("region_code", sa.String()),
    sa.column("bank_code", sa.String()),
    sa.column("handle", sa.String()),
    sa.column("status_index", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("status_changed_at", sa.DateTime(timezone=True)),
    sa.column("pin_failures", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


async def test_each_card_keeps_its_index_as_a_pool_of_one(empty_database_url: str) -> None:
    url = empty_database_url
    await migrate(url, "0007_audit_checkpoints")
    now = datetime.now(UTC)
    expected = {}
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            for index in (7, 70_000):
                person_id, card_id = uuid.uuid4(), uuid.uuid4()
                await connection.execute(
                    persons.insert().values(
                        id=person_id,
                        document_type="resident_id",
                        document_index=uuid.uuid4().hex,
                        document_number_sealed=b"sealed",
                        name_sealed=b"sealed",
                        phone_sealed=b"sealed",
                        phone_index=uuid.uuid4().hex,
                        created_at=now,
                    )
                )
                await connection.execute(
                    cards.insert().values(
                        id=card_id,
                        person_id=person_id,
                        card_number=f"T{index:012d}",
                        ssn_sealed=b"sealed",
                        ssn_index=uuid.uuid4().hex,
                        region_code="360100",
                        bank_code="ICBC",
                        handle=uuid.uuid4().hex,
                        status_index=index,
                        status="lost",
                        status_changed_at=now,
                        pin_failures=0,
                        created_at=now,
                    )
                )
                expected[index] = card_id
        await migrate(url)
        async with database.engine.connect() as connection:
            rows = await connection.execute(
                sa.text("SELECT status_index, card_id, retired_at FROM card_status_indexes")
            )
            pools = {index: (card_id, retired) for index, card_id, retired in rows}
        assert {i: (uuid.UUID(str(c)), r) for i, (c, r) in pools.items()} == {
            index: (card_id, None) for index, card_id in expected.items()
        }

        await downgrade(url, "0007_audit_checkpoints")
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            kept = await connection.execute(sa.text("SELECT status_index FROM cards"))
            assert sorted(row[0] for row in kept) == sorted(expected)
        assert "card_status_indexes" not in tables
    finally:
        await database.dispose()
