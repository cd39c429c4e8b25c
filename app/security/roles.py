"""Administrator roles and the duties each may perform: one table, deny by default.

An admin client has one role (`api_clients.role`), carried in its access tokens (`ext.role`,
and `ext.region` for a city administrator). A token without a role is a provincial
administrator's: admin tokens issued before roles existed keep what they could do.

Each administrative route family declares one `AdminDuty` (its dependency in `api/auth.py`);
`admin_may` says whether a role may perform it. An auditor reads (GET) every administrative
route and never writes. A city administrator's duties are the regional ones, and the route
then checks the object's region with `require_region`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from app.errors import Forbidden

if TYPE_CHECKING:
    from app.security.principals import AdminPrincipal

ROLE_CLAIM = "role"
REGION_CLAIM = "region"
REGION_PATTERN = r"^[0-9]{6}$"
"""A region is a six-digit administrative division code (GB/T 2260), e.g. 360100 for Nanchang."""


class AdminRole(StrEnum):
    provincial_admin = "provincial_admin"  # everything administrative
    city_admin = "city_admin"  # regional duties, for its own city only
    auditor = "auditor"  # reads every administrative route (GET), never writes
    operator = "operator"  # service-hall counter: card lifecycle, application review


DEFAULT_ROLE = AdminRole.provincial_admin


class AdminDuty(StrEnum):
    """What an administrative route family does."""

    administer = "administer"  # organisations, scanners, trust, misuse: the province only
    card_counter = "card_counter"  # /v1/admin/cards/... lifecycle and application review
    regional = "regional"  # complaints, city catalog supplements: per region


DUTY_ROLES: Mapping[AdminDuty, frozenset[AdminRole]] = MappingProxyType(
    {
        AdminDuty.administer: frozenset({AdminRole.provincial_admin}),
        AdminDuty.card_counter: frozenset({AdminRole.provincial_admin, AdminRole.operator}),
        AdminDuty.regional: frozenset({AdminRole.provincial_admin, AdminRole.city_admin}),
    }
)

READ_METHODS = frozenset({"GET", "HEAD"})


def admin_may(role: AdminRole, duty: AdminDuty, method: str) -> bool:
    """Whether `role` may call a route of `duty` with the HTTP `method`."""
    if role is AdminRole.auditor:
        return method.upper() in READ_METHODS
    return role in DUTY_ROLES[duty]


class RoleError(ValueError):
    """A role and region that do not fit together."""


def checked_role(role: str | None, region: str | None) -> tuple[AdminRole, str | None]:
    """Validates a role and its region: a city administrator has exactly one city, no other
    role has one.

    :raises RoleError:
    """
    try:
        parsed = DEFAULT_ROLE if role is None else AdminRole(role)
    except ValueError:
        known = ", ".join(AdminRole)
        raise RoleError(f"unknown role {role!r}; one of: {known}") from None
    if parsed is AdminRole.city_admin:
        if region is None or len(region) != 6 or not region.isascii() or not region.isdigit():
            raise RoleError("a city_admin needs its city's six-digit region code")
    elif region is not None:
        raise RoleError(f"a {parsed.value} acts for the whole province: it takes no region")
    return parsed, region


class OutsideRegion(Forbidden):
    code = "outside-region"
    title = "Outside your region"


def require_region(principal: AdminPrincipal, region: str | None) -> None:
    """A city administrator acts only on its own city's data (`region` is the object's).

    Other roles pass (what they may do at all is the route's duty); an object without a region
    belongs to no city, so only the province acts on it.

    :raises OutsideRegion: (403)
    """
    if principal.role is AdminRole.city_admin and (region is None or region != principal.region):
        raise OutsideRegion("this belongs to another region than yours")
