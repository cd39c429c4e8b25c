"""`ssc audit verify-chain`: exit 0 with the row count when intact, 1 naming the broken row."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.audit.chain import append_records
from app.audit.checkpoints import checkpoint_key, write_checkpoint
from app.cli import cli
from app.config import load_settings
from app.db import Database
from tests.app.audit.conftest import audit_record


@pytest.fixture
def sqlite_path(sqlite_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    shutil.copyfile(sqlite_template, path)
    return path


def seed(path: Path, count: int) -> None:
    async def append() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            async with database.session() as session:
                await append_records(session, [audit_record(n) for n in range(count)])
        finally:
            await database.dispose()

    asyncio.run(append())


def verify_chain_command(path: Path, tmp_path: Path) -> tuple[int, str, str]:
    env = {
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "SSC_ENVIRONMENT": "test",
        "SSC_VAR_DIR": str(tmp_path / "var"),
        "SSC_KEY_DIR": str(tmp_path / "var" / "keys"),
    }
    result = CliRunner().invoke(cli, ["audit", "verify-chain"], env=env)
    return result.exit_code, result.stdout, result.stderr


class TestVerifyChainCommand:
    def test_exits_0_with_the_row_count_when_intact(
        self, sqlite_path: Path, tmp_path: Path
    ) -> None:
        seed(sqlite_path, 4)
        code, out, _ = verify_chain_command(sqlite_path, tmp_path)
        assert code == 0
        assert "intact: 4 rows" in out

    def test_exits_1_naming_the_first_broken_row_after_tampering(
        self, sqlite_path: Path, tmp_path: Path
    ) -> None:
        seed(sqlite_path, 4)
        with closing(sqlite3.connect(sqlite_path)) as connection, connection:
            (row_id,) = connection.execute(
                "SELECT id FROM audit_events ORDER BY id LIMIT 1 OFFSET 2"
            ).fetchone()
            connection.execute("UPDATE audit_events SET actor = 'x' WHERE id = ?", (row_id,))
        code, _, err = verify_chain_command(sqlite_path, tmp_path)
        assert code == 1
        assert f"broken at row {row_id}" in err


def checkpoint_now(path: Path, tmp_path: Path) -> None:
    """A checkpoint of the head under the key the command derives from the same settings."""
    settings = load_settings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{path}",
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
    )

    async def write() -> None:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                await write_checkpoint(session, checkpoint_key(settings), dt.datetime.now(dt.UTC))
        finally:
            await database.dispose()

    asyncio.run(write())


class TestCheckpoints:
    def test_reports_the_checkpoint_the_chain_reaches(
        self, sqlite_path: Path, tmp_path: Path
    ) -> None:
        seed(sqlite_path, 4)
        checkpoint_now(sqlite_path, tmp_path)
        code, out, _ = verify_chain_command(sqlite_path, tmp_path)
        assert code == 0
        assert "intact: 4 rows; reaches the latest checkpoint (row 4 at" in out

    def test_exits_1_when_the_newest_rows_were_deleted_after_a_checkpoint(
        self, sqlite_path: Path, tmp_path: Path
    ) -> None:
        seed(sqlite_path, 5)
        checkpoint_now(sqlite_path, tmp_path)
        with closing(sqlite3.connect(sqlite_path)) as connection, connection:
            connection.execute("DELETE FROM audit_events WHERE id > 3")
        code, _, err = verify_chain_command(sqlite_path, tmp_path)
        assert code == 1
        assert "broken at row 5" in err
        assert "the newest rows were deleted (the chain now ends at row 3)" in err
