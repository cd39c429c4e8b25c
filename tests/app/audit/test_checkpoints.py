"""Signed checkpoints of the audit chain's head: deleting the newest rows, which leaves a valid
shorter chain, is detected once a checkpoint names a row beyond them (app/audit/checkpoints.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, update
from sqlmodel import col

from app.audit.chain import append_records, chain_hash, stored_record
from app.audit.checkpoints import (
    CHECKPOINT_PURPOSE,
    check_latest_checkpoint,
    checkpoint_key,
    latest_checkpoint,
    write_checkpoint,
)
from app.audit.consumer import AuditConsumer
from app.audit.log import record
from app.audit.models import AuditCheckpoint, AuditEvent
from app.audit.service import verify_stored_chain
from app.config import load_settings, new_secret
from app.db import Database
from app.store import Store
from tests.app.audit.conftest import audit_record, stored_rows

KEY = b"k" * 32
NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
WAIT = 10.0
"""Upper bound for the background consumer to write a checkpoint; only reached when broken."""


async def append(database: Database, first: int, count: int) -> None:
    async with database.session() as session:
        await append_records(session, [audit_record(n) for n in range(first, first + count)])


async def checkpoint(database: Database, key: bytes = KEY) -> None:
    async with database.session() as session:
        assert await write_checkpoint(session, key, NOW) is not None


async def delete_rows_after(database: Database, row_id: int) -> None:
    async with database.session() as session:
        await session.exec(delete(AuditEvent).where(col(AuditEvent.id) > row_id))


class TestWriting:
    async def test_an_empty_log_gets_no_checkpoint(self, database: Database) -> None:
        async with database.session() as session:
            assert await write_checkpoint(session, KEY, NOW) is None

    async def test_names_the_head_once_per_head(self, database: Database) -> None:
        await append(database, 0, 5)
        head = (await stored_rows(database))[-1]
        async with database.session() as session:
            written = await write_checkpoint(session, KEY, NOW)
            again = await write_checkpoint(session, KEY, NOW)
        assert written is not None
        assert (written.row_id, written.row_hash) == (head.id, head.hash)
        assert again is None
        await append(database, 5, 2)
        await checkpoint(database)
        async with database.session() as session:
            latest = await latest_checkpoint(session)
        assert latest is not None
        assert latest.row_id == (await stored_rows(database))[-1].id

    def test_the_key_is_derived_from_the_kek_for_this_purpose_only(self) -> None:
        settings = load_settings(environment="test", key_encryption_key=new_secret())
        other = load_settings(environment="test", key_encryption_key=new_secret())
        assert checkpoint_key(settings) != checkpoint_key(other)
        assert checkpoint_key(settings) != settings.secret("key_encryption_key")
        assert CHECKPOINT_PURPOSE == "ssc/audit-checkpoint/v1"


class TestVerifying:
    async def test_an_intact_chain_reaches_its_latest_checkpoint(
        self, database: Database, database_url: str
    ) -> None:
        await append(database, 0, 4)
        await checkpoint(database)
        await append(database, 4, 2)  # rows after the checkpoint are fine

        report = await verify_stored_chain(database_url, KEY)

        assert report.intact, report.reason
        assert report.rows == 6
        assert report.checkpoint is not None
        assert "reaches the latest checkpoint" in report.checkpoint

    async def test_deleting_the_newest_rows_is_detected_after_a_checkpoint(
        self, database: Database, database_url: str
    ) -> None:
        await append(database, 0, 6)
        await checkpoint(database)
        rows = await stored_rows(database)
        await delete_rows_after(database, rows[2].id or 0)

        unanchored = await verify_stored_chain(database_url)
        report = await verify_stored_chain(database_url, KEY)

        assert unanchored.intact, "the shorter chain itself is valid: only the anchor shows it"
        assert not report.intact
        assert report.first_broken_id == rows[-1].id
        assert "newest rows were deleted" in report.reason
        assert f"ends at row {rows[2].id}" in report.reason

    async def test_a_chain_rewritten_from_the_checkpointed_row_is_detected(
        self, database: Database, database_url: str
    ) -> None:
        await append(database, 0, 3)
        await checkpoint(database)
        head = (await stored_rows(database))[-1]
        rehashed = chain_hash(head.prev_hash, replace(stored_record(head), data='{"n":"forged"}'))
        async with database.session() as session:
            await session.exec(
                update(AuditEvent)
                .where(col(AuditEvent.id) == head.id)
                .values(data='{"n":"forged"}', hash=rehashed)
            )

        report = await verify_stored_chain(database_url, KEY)

        assert not report.intact
        assert "rewritten" in report.reason

    async def test_a_forged_checkpoint_is_detected(
        self, database: Database, database_url: str
    ) -> None:
        await append(database, 0, 3)
        await checkpoint(database)
        rows = await stored_rows(database)
        await delete_rows_after(database, rows[0].id or 0)
        async with database.session() as session:
            await session.exec(
                update(AuditCheckpoint).values(row_id=rows[0].id, row_hash=rows[0].hash)
            )

        report = await verify_stored_chain(database_url, KEY)

        assert not report.intact
        assert "wrong MAC" in report.reason

    async def test_without_a_checkpoint_the_report_says_so(
        self, database: Database, database_url: str
    ) -> None:
        await append(database, 0, 2)
        report = await verify_stored_chain(database_url, KEY)
        assert report.intact
        assert report.checkpoint == "no checkpoint written yet"

    async def test_a_checkpoint_under_another_key_does_not_verify(self, database: Database) -> None:
        await append(database, 0, 2)
        await checkpoint(database, key=b"x" * 32)
        async with database.session() as session:
            checked = await check_latest_checkpoint(session, KEY)
        assert checked.problem is not None


class TestTheConsumerWritesThem:
    async def test_every_interval_and_at_shutdown(
        self, store: Store, database: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        consumer = AuditConsumer(
            store, database, block_ms=0, checkpoint_key=KEY, checkpoint_every=0.05
        )
        caplog.set_level(logging.INFO, logger="ssc.audit")
        async with consumer.running():
            await record(store, "card.lost", "holder:1", "card-1")
            async with asyncio.timeout(WAIT):
                while True:
                    async with database.session() as session:
                        if await latest_checkpoint(session) is not None:
                            break
                    await asyncio.sleep(0.02)
            await record(store, "card.found", "holder:1", "card-1")
        rows = await stored_rows(database)
        async with database.session() as session:
            latest = await latest_checkpoint(session)
            checked = await check_latest_checkpoint(session, KEY)
        assert latest is not None
        assert latest.row_id == rows[-1].id, "the shutdown checkpoint names the last row"
        assert checked.problem is None
        assert any(latest.mac in message for message in caplog.messages)

    async def test_none_without_a_key(self, store: Store, database: Database) -> None:
        consumer = AuditConsumer(store, database, block_ms=0)
        await record(store, "card.lost", "holder:1", "card-1")
        await consumer.drain_once()
        assert await consumer.checkpoint_once() is None
