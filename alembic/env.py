"""Alembic environment: runs on a connection handed in by app.db, or on SSC_DATABASE_URL."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table on SQLModel.metadata)
from alembic import context
from app.config import load_settings
from app.db import create_engine
from app.security.pii import PiiCipher

target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return

    # The plain `alembic` command: the data key from the settings, as `ssc migrate` passes it
    # (migrations that seal existing personal data need it).
    settings = load_settings()
    context.config.attributes.setdefault(
        "pii", PiiCipher.from_master_key(settings.secret("data_key"))
    )

    async def run() -> None:
        engine = create_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
        await engine.dispose()

    asyncio.run(run())


run_online()
