"""Every version of the catalog ever written: the province's versions and the cities'
supplements, with who proposed or published each and who decided."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class VersionKind(StrEnum):
    provincial = "provincial"
    supplement = "supplement"


class VersionStatus(StrEnum):
    proposed = "proposed"
    """A city's supplement awaiting the province's decision (filing, 备案); never public."""
    approved = "approved"
    """A city's supplement in effect (the city's latest approved one)."""
    rejected = "rejected"
    """A city's supplement the province refused; never public."""
    current = "current"
    """The province's version in effect."""
    superseded = "superseded"
    """Was in effect (current, or an approved supplement), replaced by a later version."""


PUBLIC_STATUSES = frozenset(
    {VersionStatus.current, VersionStatus.approved, VersionStatus.superseded}
)


class CatalogVersion(SQLModel, table=True):
    """One version; `number` is one sequence across the province and every city."""

    __tablename__ = "catalog_versions"

    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    region: str = Field(max_length=12, index=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    scenes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    note: str = Field(default="", max_length=500)
    based_on: int | None = None
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    decision_reason: str | None = Field(default=None, max_length=500)
