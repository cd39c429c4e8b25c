"""`ssc migrate` and `ssc serve` (the real commands, as subprocesses) when what they need is
not there: one line naming the setting and the cause, at most 3 lines, a non-zero exit, no
traceback unless asked for; `ssc migrate` creates a missing PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.config import new_secret
from tests.conftest import PostgresServer, _postgres, migrated_database_url
from tests.servers import SSC, free_port

COMMAND_TIMEOUT = 60


def environment(var: Path, **settings: str) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("SSC_")}
    return {
        **inherited,
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var}/ssc.db",
        "SSC_VAR_DIR": str(var),
        "SSC_KEY_DIR": str(var / "keys"),
        "SSC_KEY_ENCRYPTION_KEY": new_secret(),
        "SSC_DATA_KEY": new_secret(),
        "SSC_TOKEN_SECRET": new_secret(),
        "SSC_PORT": str(free_port()),
        **{f"SSC_{name.upper()}": value for name, value in settings.items()},
    }


def ssc(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """Runs `ssc ARGS`; its exit code and every line it printed (stdout and stderr)."""
    finished = subprocess.run(
        [SSC, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    return finished.returncode, finished.stdout.decode().splitlines()


def assert_clean_failure(code: int, lines: list[str], setting: str, cause: str) -> None:
    output = "\n".join(lines)
    assert code != 0, output
    assert len(lines) <= 3, output
    assert "Traceback" not in output
    assert setting in lines[0] and cause in lines[0], output


def unreachable_postgres() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/ssc"


@pytest.fixture
def missing_database(request: pytest.FixtureRequest) -> tuple[PostgresServer, str]:
    """A database name on the shared PostgreSQL that does not exist (yet); dropped with the
    session's other throw-away databases, should a test create it."""
    server = _postgres(request)
    name = f"ssc_test_missing_{uuid.uuid4().hex[:12]}"
    server.created.append(name)
    return server, name


@pytest.fixture
def role_without_createdb(missing_database: tuple[PostgresServer, str]) -> Iterator[str]:
    server, _ = missing_database
    role = f"ssc_test_role_{uuid.uuid4().hex[:12]}"
    server.run(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    yield role
    server.run(f'DROP ROLE IF EXISTS "{role}"')


class TestUnreachableDatabase:
    @pytest.mark.parametrize("command", ["migrate", "serve"])
    def test_one_line_names_the_setting_and_the_refusal(self, tmp_path: Path, command: str) -> None:
        env = environment(tmp_path, database_url=unreachable_postgres())
        code, lines = ssc(env, command)
        assert_clean_failure(code, lines, "SSC_DATABASE_URL", "Connect call failed")

    def test_debug_shows_the_traceback(self, tmp_path: Path) -> None:
        env = environment(tmp_path, database_url=unreachable_postgres())
        code, lines = ssc(env, "--debug", "migrate")
        assert code != 0
        assert any("Traceback" in line for line in lines)

    def test_a_debug_log_level_shows_the_traceback_too(self, tmp_path: Path) -> None:
        env = environment(tmp_path, database_url=unreachable_postgres(), log_level="debug")
        code, lines = ssc(env, "migrate")
        assert code != 0
        assert any("Traceback" in line for line in lines)


class TestMissingDatabase:
    def test_serve_says_it_does_not_exist(
        self, tmp_path: Path, missing_database: tuple[PostgresServer, str]
    ) -> None:
        server, name = missing_database
        env = environment(tmp_path, database_url=server.url_of(name))
        code, lines = ssc(env, "serve")
        assert_clean_failure(code, lines, "SSC_DATABASE_URL", "does not exist")
        assert name in lines[0]

    def test_migrate_creates_it_once(
        self, tmp_path: Path, missing_database: tuple[PostgresServer, str]
    ) -> None:
        server, name = missing_database
        env = environment(tmp_path, database_url=server.url_of(name))
        code, lines = ssc(env, "migrate")
        url = make_url(server.url_of(name))
        where = f"{url.host}:{url.port or 5432}/{name}"
        assert (code, lines) == (
            0,
            [f"created database {where}", f"database at {where} migrated to head"],
        )
        code, lines = ssc(env, "migrate")
        assert (code, lines) == (0, [f"database at {where} migrated to head"])

    def test_migrate_by_a_role_that_may_not_create_it_says_so(
        self,
        tmp_path: Path,
        missing_database: tuple[PostgresServer, str],
        role_without_createdb: str,
    ) -> None:
        server, name = missing_database
        url = server.url_of(name).replace("postgres@", f"{role_without_createdb}@", 1)
        code, lines = ssc(environment(tmp_path, database_url=url), "migrate")
        assert_clean_failure(code, lines, "SSC_DATABASE_URL", "may not create it")


class TestUnreachableRedis:
    async def test_serve_says_redis_cannot_be_reached(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        database_url = await migrated_database_url(request, "sqlite", tmp_path)
        port = free_port()
        env = environment(
            tmp_path, database_url=database_url, redis_url=f"redis://127.0.0.1:{port}/0"
        )
        code, lines = ssc(env, "serve")
        assert_clean_failure(code, lines, "SSC_REDIS_URL", f"connecting to 127.0.0.1:{port}")

    def test_migrate_does_not_need_redis(self, tmp_path: Path) -> None:
        """Migrations touch the database only: a Redis outage does not stop them (the
        `ssc serve` that follows is what refuses to start)."""
        env = environment(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
        code, lines = ssc(env, "migrate")
        assert code == 0 and len(lines) == 1, lines
