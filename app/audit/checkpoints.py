"""Signed checkpoints of the audit chain's head, kept outside the chain table.

The hash chain shows an edited, inserted or deleted row, except at the tail: deleting the
newest rows leaves a valid shorter chain. So every `SSC_AUDIT_CHECKPOINT_INTERVAL` seconds the
audit consumer notes the head (row id and hash) in `audit_checkpoints`, with a MAC; `ssc audit
verify-chain` checks the latest checkpoint: its MAC must be right, and the row it names must
still exist with the hash it names (so the chain reaches at least that far). Deleting rows up
to before a checkpoint, or rewriting the chain from there back, is then detected.

The MAC is HMAC-SHA256 under a key derived (HKDF, purpose `ssc/audit-checkpoint/v1`) from the
key-encryption key, not a signature by a key of the token signing key ring, because:

- the ring's keys have another job (QR tokens) and another life: they rotate every
  `SSC_KEY_ROTATION_DAYS`, retired ones are pruned after token lifetime plus the offline
  window, and one may be revoked in an emergency; checkpoints signed with them would become
  unverifiable, or forgeable with a leaked token key. One key per job.
- the only verifier is this deployment (`ssc audit verify-chain` runs with its secrets), so a
  public key buys nothing; what matters is that whoever can write the database cannot forge a
  checkpoint, and the KEK never enters the database. (Whoever holds the KEK can forge
  checkpoints, but also decrypt the signing keys: it is already the crown jewel.)

Limit: whoever can delete audit rows can delete the newest checkpoints as well, falling back
to an older one. Each checkpoint is therefore also logged (INFO, logger `ssc.audit`, with its
MAC): a log shipped off the machine keeps copies to compare with what verify-chain reports.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.chain import chain_head, lock_chain, utc_iso
from app.audit.models import AuditCheckpoint, AuditEvent
from app.config import Settings
from app.runtime import derive_key

CHECKPOINT_PURPOSE = "ssc/audit-checkpoint/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at `created_at`: row `row_id` had hash `row_hash`."""

    row_id: int
    row_hash: str
    created_at: datetime
    mac: str

    def describe(self) -> str:
        return f"row {self.row_id} at {utc_iso(self.created_at)}"


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """The latest checkpoint (None: none written yet) and what is wrong with it, if anything."""

    checkpoint: Checkpoint | None
    problem: str | None = None


def checkpoint_key(settings: Settings) -> bytes:
    """The MAC key of checkpoints, derived from SSC_KEY_ENCRYPTION_KEY.

    :raises SettingsError: the key-encryption key is not set.
    """
    return derive_key(settings.secret("key_encryption_key"), CHECKPOINT_PURPOSE)


def checkpoint_mac(key: bytes, row_id: int, row_hash: str, created_at: datetime) -> str:
    message = orjson.dumps([CHECKPOINT_PURPOSE, row_id, row_hash, utc_iso(created_at)])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _of(row: AuditCheckpoint) -> Checkpoint:
    created_at = row.created_at
    if created_at.tzinfo is None:  # SQLite hands back naive datetimes (stored as UTC)
        created_at = created_at.replace(tzinfo=UTC)
    return Checkpoint(row.row_id, row.row_hash, created_at, row.mac)


async def latest_checkpoint(session: AsyncSession) -> Checkpoint | None:
    statement = select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
    row = (await session.exec(statement)).first()
    return None if row is None else _of(row)


async def write_checkpoint(session: AsyncSession, key: bytes, now: datetime) -> Checkpoint | None:
    """Notes the chain's head, unless the log is empty or the latest checkpoint names it
    already; returns what was written. Holds the chain lock (so appenders wait and concurrent
    consumers write one checkpoint per head); only flushes, the caller commits."""
    connection = await session.connection()
    await lock_chain(connection)
    head = await chain_head(connection)
    if head is None:
        return None
    latest = await latest_checkpoint(session)
    if latest is not None and latest.row_id >= head[0]:
        return None
    row_id, row_hash = head
    checkpoint = Checkpoint(row_id, row_hash, now, checkpoint_mac(key, row_id, row_hash, now))
    session.add(
        AuditCheckpoint(created_at=now, row_id=row_id, row_hash=row_hash, mac=checkpoint.mac)
    )
    await session.flush()
    return checkpoint


async def check_latest_checkpoint(session: AsyncSession, key: bytes) -> CheckpointCheck:
    """The latest checkpoint must carry a right MAC and name a row that still has its hash."""
    latest = await latest_checkpoint(session)
    if latest is None:
        return CheckpointCheck(None)
    expected = checkpoint_mac(key, latest.row_id, latest.row_hash, latest.created_at)
    if not hmac.compare_digest(expected, latest.mac):
        return CheckpointCheck(
            latest,
            f"the latest checkpoint ({latest.describe()}) has a wrong MAC: it was forged or "
            "altered (or SSC_KEY_ENCRYPTION_KEY is not this deployment's)",
        )
    row = await session.get(AuditEvent, latest.row_id)
    if row is None:
        head = await chain_head(await session.connection())
        ends = "the log is empty" if head is None else f"the chain now ends at row {head[0]}"
        return CheckpointCheck(
            latest,
            f"the row named by the latest checkpoint ({latest.describe()}) is missing: "
            f"the newest rows were deleted ({ends})",
        )
    if row.hash != latest.row_hash:
        return CheckpointCheck(
            latest,
            f"the row named by the latest checkpoint ({latest.describe()}) no longer has the "
            "hash it had: the chain was rewritten",
        )
    return CheckpointCheck(latest)
