"""The catalog's versions: the province publishes, a city proposes a supplement, the province
approves or rejects it (filing, 备案). Every version is kept with who did what, and audited.

Each function takes the acting region, so provincial and city administrator roles can be
checked by the caller: the province's code for `publish_provincial_version` and
`decide_supplement`, the city's code for `propose_supplement`.

After a change the worker that made it rebuilds its snapshot before answering, and announces
the change on `CATALOG_CHANGES`, so every other worker rebuilds its own within a second
(`app.catalog.background`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import utcnow
from app.catalog.defaults import DEFAULT_SCENES
from app.catalog.errors import CatalogConflict, CatalogVersionNotFound, InvalidCatalog
from app.catalog.models import PUBLIC_STATUSES, CatalogVersion, VersionKind, VersionStatus
from app.catalog.scenes import CatalogSnapshot, Scene, Supplement, city_of
from app.runtime import Runtime

logger = logging.getLogger("ssc.catalog")

CATALOG_CHANGES = "catalog-changes"
"""Pub/sub channel: a version was published, approved or superseded."""

SYSTEM_ACTOR = "system:default-catalog"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


def is_city_of(province: str, region: str) -> bool:
    """Whether `region` is a city (prefecture) code of `province`: six digits, the province's
    first two, ending in 00 but not 0000 (360100 of 360000)."""
    return (
        len(region) == 6
        and region.isdigit()
        and region[:2] == province[:2]
        and region.endswith("00")
        and not region.endswith("0000")
    )


def _rows(scenes: Sequence[Scene]) -> list[dict[str, object]]:
    codes = [scene.code for scene in scenes]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise InvalidCatalog(f"scene codes repeated: {', '.join(duplicates)}", scenes=duplicates)
    return [dict(scene.as_row()) for scene in scenes]


async def _next_number(session: AsyncSession) -> int:
    highest = (await session.exec(select(func.max(col(CatalogVersion.number))))).one()
    return int(highest or 0) + 1


async def _insert(session: AsyncSession, version: CatalogVersion) -> None:
    session.add(version)
    try:
        await session.flush()
    except IntegrityError:
        raise CatalogConflict("another catalog version was written meanwhile; retry") from None


# --- Reading ---------------------------------------------------------------------------------


async def load_snapshot(runtime: Runtime) -> CatalogSnapshot:
    """The catalog in effect, read from the database (never on the verify path)."""
    province = runtime.settings.issuer
    async with runtime.database.session() as session:
        statement = select(CatalogVersion).where(
            col(CatalogVersion.status).in_([VersionStatus.current, VersionStatus.approved])
        )
        rows = list((await session.exec(statement)).all())
    provincial = [row for row in rows if row.kind == VersionKind.provincial]
    if not provincial:
        return runtime.catalog  # not seeded yet: keep what we hold
    current = max(provincial, key=lambda row: row.number)
    latest: dict[str, CatalogVersion] = {}
    for row in rows:
        if row.kind == VersionKind.supplement and (
            row.region not in latest or row.number > latest[row.region].number
        ):
            latest[row.region] = row
    supplements = [
        Supplement(
            region,
            row.number,
            {scene["code"]: Scene.of(scene, region) for scene in row.scenes},
        )
        for region, row in sorted(latest.items())
    ]
    return CatalogSnapshot.build(
        province,
        current.number,
        [Scene.of(scene, province) for scene in current.scenes],
        supplements,
    )


async def refresh_catalog(runtime: Runtime) -> None:
    """Rebuilds this worker's snapshot (after a change, or on a `CATALOG_CHANGES` message)."""
    runtime.catalog = await load_snapshot(runtime)


async def ensure_default_catalog(runtime: Runtime) -> None:
    """Seeds version 1 (the default provincial catalog) when no provincial version exists:
    migration `0009_catalog` seeds it, this covers a table emptied since."""
    async with runtime.database.session() as session:
        statement = select(CatalogVersion.number).where(
            CatalogVersion.kind == VersionKind.provincial
        )
        if (await session.exec(statement.limit(1))).first() is not None:
            return
        now = utcnow()
        session.add(
            CatalogVersion(
                number=await _next_number(session),
                region=runtime.settings.issuer,
                kind=VersionKind.provincial,
                status=VersionStatus.current,
                scenes=list(DEFAULT_SCENES),
                note="default provincial catalog (GD7, SC8-10)",
                created_by=SYSTEM_ACTOR,
                created_at=now,
                decided_by=SYSTEM_ACTOR,
                decided_at=now,
            )
        )
        try:
            await session.flush()
        except IntegrityError:  # another worker seeded it first
            await session.rollback()


async def public_version(session: AsyncSession, number: int) -> CatalogVersion:
    """A version as published: the province's, or a city's approved supplement.

    :raises CatalogVersionNotFound: for a missing, proposed or rejected version alike.
    """
    version = await session.get(CatalogVersion, number)
    if version is None or version.status not in PUBLIC_STATUSES:
        raise CatalogVersionNotFound(f"no published catalog version {number}")
    return version


async def list_versions(
    session: AsyncSession, *, region: str | None = None, status: str | None = None
) -> Sequence[CatalogVersion]:
    """Every version, newest first (administrators: with proposals and rejections)."""
    statement = select(CatalogVersion).order_by(col(CatalogVersion.number).desc())
    if region is not None:
        statement = statement.where(CatalogVersion.region == region)
    if status is not None:
        statement = statement.where(CatalogVersion.status == status)
    return (await session.exec(statement)).all()


# --- Changing --------------------------------------------------------------------------------


async def _announce(runtime: Runtime, action: str, actor: str, version: CatalogVersion) -> None:
    await record(
        runtime.store,
        action,
        actor,
        f"catalog:{version.number}",
        {
            "region": version.region,
            "kind": version.kind,
            "status": version.status,
            "scenes": ",".join(scene["code"] for scene in version.scenes),
        },
    )
    if version.status in (VersionStatus.current, VersionStatus.approved):
        await refresh_catalog(runtime)
        await runtime.store.publish(CATALOG_CHANGES, str(version.number).encode())


async def publish_provincial_version(
    runtime: Runtime, actor: str, *, region: str, scenes: Sequence[Scene], note: str = ""
) -> CatalogVersion:
    """A new provincial version, in effect at once; the previous one is superseded.

    :param region: the acting administrator's region: the province's code.
    :raises InvalidCatalog: for another region, repeated codes, or a code that a city's
        approved supplement uses already.
    :raises CatalogConflict: when another version was published meanwhile.
    """
    province = runtime.settings.issuer
    if region != province:
        raise InvalidCatalog(f"only the province ({province}) publishes the provincial catalog")
    rows = _rows(scenes)
    clashes = sorted(
        scene.code
        for supplement in runtime.catalog.supplements.values()
        for scene in scenes
        if scene.code in supplement.scenes
    )
    if clashes:
        raise InvalidCatalog(
            f"codes used by a city supplement: {', '.join(clashes)}", scenes=clashes
        )
    async with runtime.database.session() as session:
        statement = select(CatalogVersion).where(
            CatalogVersion.kind == VersionKind.provincial,
            CatalogVersion.status == VersionStatus.current,
        )
        previous = list((await session.exec(statement)).all())
        now = utcnow()
        for old in previous:
            old.status = VersionStatus.superseded
            session.add(old)
        version = CatalogVersion(
            number=await _next_number(session),
            region=province,
            kind=VersionKind.provincial,
            status=VersionStatus.current,
            scenes=rows,
            note=note,
            based_on=max((old.number for old in previous), default=None),
            created_by=actor,
            created_at=now,
            decided_by=actor,
            decided_at=now,
        )
        await _insert(session, version)
    await _announce(runtime, "catalog.publish", actor, version)
    return version


async def propose_supplement(
    runtime: Runtime, actor: str, *, region: str, scenes: Sequence[Scene], note: str = ""
) -> CatalogVersion:
    """A city's supplement, proposed for the province's decision; not public until approved.

    :param region: the acting administrator's city code (e.g. 360100).
    :raises InvalidCatalog: for a region that is not a city of the province, repeated codes,
        or a code of the provincial catalog or of another city's supplement.
    """
    province = runtime.settings.issuer
    if not is_city_of(province, region):
        raise InvalidCatalog(f"{region} is not a city (prefecture) code of {province}")
    rows = _rows(scenes)
    _check_codes(runtime.catalog, region, [scene.code for scene in scenes])
    async with runtime.database.session() as session:
        based_on = runtime.catalog.supplements.get(region)
        version = CatalogVersion(
            number=await _next_number(session),
            region=region,
            kind=VersionKind.supplement,
            status=VersionStatus.proposed,
            scenes=rows,
            note=note,
            based_on=None if based_on is None else based_on.version,
            created_by=actor,
        )
        await _insert(session, version)
    await _announce(runtime, "catalog.propose", actor, version)
    return version


def _check_codes(catalog: CatalogSnapshot, region: str, codes: Sequence[str]) -> None:
    """A supplement's codes are new to the whole catalog: not provincial, not another
    city's (one code, one scene, so the verify path needs no region)."""
    taken = sorted(
        code
        for code in codes
        if code in catalog.scenes
        or any(
            code in supplement.scenes
            for city, supplement in catalog.supplements.items()
            if city != region
        )
    )
    if taken:
        raise InvalidCatalog(
            f"scene codes already in the catalog: {', '.join(taken)}", scenes=taken
        )


async def decide_supplement(
    runtime: Runtime,
    actor: str,
    number: int,
    decision: Decision,
    *,
    region: str,
    reason: str | None = None,
) -> CatalogVersion:
    """The province approves (the supplement takes effect, replacing the city's previous
    one) or rejects a proposed supplement.

    :param region: the acting administrator's region: the province's code.
    :raises CatalogVersionNotFound: no such supplement.
    :raises CatalogConflict: it was decided already.
    :raises InvalidCatalog: for another region, or when its codes have since been taken.
    """
    province = runtime.settings.issuer
    if region != province:
        raise InvalidCatalog(f"only the province ({province}) decides on supplements")
    async with runtime.database.session() as session:
        version = await session.get(CatalogVersion, number)
        if version is None or version.kind != VersionKind.supplement:
            raise CatalogVersionNotFound(f"no supplement {number}")
        if version.status != VersionStatus.proposed:
            raise CatalogConflict(f"supplement {number} is {version.status} already")
        if decision is Decision.approve:
            _check_codes(runtime.catalog, version.region, [s["code"] for s in version.scenes])
            statement = select(CatalogVersion).where(
                CatalogVersion.region == version.region,
                CatalogVersion.status == VersionStatus.approved,
            )
            for old in (await session.exec(statement)).all():
                old.status = VersionStatus.superseded
                session.add(old)
        version.status = (
            VersionStatus.approved if decision is Decision.approve else VersionStatus.rejected
        )
        version.decided_by = actor
        version.decided_at = utcnow()
        version.decision_reason = reason
        session.add(version)
        await session.flush()
    await _announce(runtime, f"catalog.{decision.value}", actor, version)
    return version


__all__ = [
    "CATALOG_CHANGES",
    "Decision",
    "city_of",
    "decide_supplement",
    "ensure_default_catalog",
    "list_versions",
    "load_snapshot",
    "propose_supplement",
    "public_version",
    "publish_provincial_version",
    "refresh_catalog",
]
