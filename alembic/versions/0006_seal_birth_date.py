"""seal persons.birth_date like the other personal fields

Revision ID: 0006_seal_birth_date
Revises: 0005_trust
Create Date: 2026-12-02

The plaintext `birth_date` column becomes `birth_date_sealed` (AES-GCM under the data key,
field "birth_date", ISO date as text: `app.cards.service.BIRTH_DATE_FIELD`). Existing values
are sealed here, in the migration's own transaction, so no value is ever lost:

- the data key comes from the caller: `ssc migrate` (and `app.db.migrate(..., pii=...)`)
  hands the `PiiCipher` of SSC_DATA_KEY in `config.attributes["pii"]`; the plain `alembic`
  command gets it from the settings in `alembic/env.py`;
- each value is sealed and opened again before it is written; the plaintext column is dropped
  only after every row has its sealed value, all in one transaction;
- a database holding plaintext birth dates with no key at hand stops the migration with an
  error before anything is changed (checked before any DDL: SQLite's driver commits DDL by
  itself; PostgreSQL would roll it back with the rest).

Downgrade opens the sealed values back into a plaintext column, under the same rules.
"""

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from alembic import context, op
from app.security.pii import PiiCipher

revision: str = "0006_seal_birth_date"
down_revision: str | None = "0005_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELD = "birth_date"  # bound into each sealed value: never change it
CHUNK = 1000

persons = sa.table(
    "persons",
    sa.column("id", sa.Uuid()),
    sa.column("birth_date", sa.Date()),
    sa.column("birth_date_sealed", sa.LargeBinary()),
)


def _cipher(rows: int, what: str) -> PiiCipher:
    pii: Any = context.config.attributes.get("pii")
    if not isinstance(pii, PiiCipher):
        raise RuntimeError(
            f"persons holds {rows} {what} birth dates and converting them needs the data key:"
            " run `ssc migrate` with SSC_DATA_KEY set (nothing was changed)"
        )
    return pii


def _columns(bind: sa.Connection) -> set[str]:
    return {column["name"] for column in sa.inspect(bind).get_columns("persons")}


def _write(bind: sa.Connection, column: str, values: list[dict[str, Any]]) -> None:
    statement = (
        sa.update(persons)
        .where(persons.c.id == sa.bindparam("person_id"))
        .values({column: sa.bindparam("value")})
    )
    for start in range(0, len(values), CHUNK):
        bind.execute(statement, values[start : start + CHUNK])


def upgrade() -> None:
    bind = op.get_bind()
    # Rows and key first, before any DDL: SQLite's driver commits DDL on its own, so a refusal
    # after `add_column` would leave the schema half changed there.
    rows = bind.execute(
        sa.select(persons.c.id, persons.c.birth_date).where(persons.c.birth_date.is_not(None))
    ).all()
    pii = _cipher(len(rows), "plaintext") if rows else None
    if "birth_date_sealed" not in _columns(bind):  # present after an interrupted SQLite run
        op.add_column("persons", sa.Column("birth_date_sealed", sa.LargeBinary(), nullable=True))
    if pii is not None:
        sealed = []
        for person_id, born in rows:
            value = pii.seal(FIELD, born.isoformat())
            if pii.open(FIELD, value) != born.isoformat():  # pragma: no cover (AES-GCM)
                raise RuntimeError("a sealed birth date did not open to its value")
            sealed.append({"person_id": person_id, "value": value})
        _write(bind, "birth_date_sealed", sealed)
    # Last, once every value has its sealed copy. SQLite 3.35+ drops a column in place (a
    # batch copy of the table would trip the foreign keys that point at persons).
    op.drop_column("persons", "birth_date")


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(persons.c.id, persons.c.birth_date_sealed).where(
            persons.c.birth_date_sealed.is_not(None)
        )
    ).all()
    pii = _cipher(len(rows), "sealed") if rows else None
    if "birth_date" not in _columns(bind):
        op.add_column("persons", sa.Column("birth_date", sa.Date(), nullable=True))
    if pii is not None:
        opened = [
            {"person_id": person_id, "value": date.fromisoformat(pii.open(FIELD, value))}
            for person_id, value in rows
        ]
        _write(bind, "birth_date", opened)
    op.drop_column("persons", "birth_date_sealed")
