"""The table of administrator roles: who may perform which duty, and a city's bounds."""

from __future__ import annotations

import pytest

from app.security.principals import AdminPrincipal
from app.security.roles import (
    AdminDuty,
    AdminRole,
    OutsideRegion,
    RoleError,
    admin_may,
    checked_role,
    require_region,
)


@pytest.mark.parametrize("duty", list(AdminDuty))
def test_the_provincial_administrator_performs_every_duty(duty: AdminDuty) -> None:
    assert admin_may(AdminRole.provincial_admin, duty, "POST")
    assert admin_may(AdminRole.provincial_admin, duty, "GET")


@pytest.mark.parametrize("duty", list(AdminDuty))
def test_the_auditor_reads_every_duty_and_writes_none(duty: AdminDuty) -> None:
    assert admin_may(AdminRole.auditor, duty, "GET")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert not admin_may(AdminRole.auditor, duty, method)


def test_the_operator_works_the_counter_only() -> None:
    assert admin_may(AdminRole.operator, AdminDuty.card_counter, "POST")
    assert not admin_may(AdminRole.operator, AdminDuty.administer, "GET")
    assert not admin_may(AdminRole.operator, AdminDuty.regional, "GET")


def test_the_city_administrator_performs_regional_duties_only() -> None:
    assert admin_may(AdminRole.city_admin, AdminDuty.regional, "POST")
    assert not admin_may(AdminRole.city_admin, AdminDuty.administer, "GET")
    assert not admin_may(AdminRole.city_admin, AdminDuty.card_counter, "POST")


def principal(role: AdminRole, region: str | None = None) -> AdminPrincipal:
    return AdminPrincipal("adm_x", frozenset({"admin"}), role, region)


class TestRequireRegion:
    def test_a_city_administrator_acts_on_its_city(self) -> None:
        require_region(principal(AdminRole.city_admin, "360100"), "360100")

    @pytest.mark.parametrize("region", ["360200", None])
    def test_not_on_another_city_nor_on_what_has_no_city(self, region: str | None) -> None:
        with pytest.raises(OutsideRegion):
            require_region(principal(AdminRole.city_admin, "360100"), region)

    @pytest.mark.parametrize("role", [AdminRole.provincial_admin, AdminRole.auditor])
    def test_the_province_spans_every_city(self, role: AdminRole) -> None:
        require_region(principal(role), "360200")
        require_region(principal(role), None)


class TestCheckedRole:
    def test_no_role_is_the_provincial_administrator(self) -> None:
        assert checked_role(None, None) == (AdminRole.provincial_admin, None)

    def test_a_city_administrator_has_its_city(self) -> None:
        assert checked_role("city_admin", "360100") == (AdminRole.city_admin, "360100")

    @pytest.mark.parametrize(
        ("role", "region"),
        [
            ("superuser", None),
            ("city_admin", None),
            ("city_admin", "36010"),
            ("city_admin", "３６０１００"),  # full-width digits are not a region code
            ("operator", "360100"),
        ],
    )
    def test_what_does_not_fit_is_refused(self, role: str, region: str | None) -> None:
        with pytest.raises(RoleError):
            checked_role(role, region)
