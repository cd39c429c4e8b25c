"""The default provincial catalog (version 1), from GD7 and SC8-10: the scenes of daily life
where the e-card is scanned, each with the least it needs.

Seeded by migration `0009_catalog` and, on an empty table, at start
(`app.catalog.service.ensure_default_catalog`). Version 1 is history once written: a change
is a new provincial version (`POST /v1/admin/catalog/versions`), not an edit here.

The ten codes of the former hard-coded catalog keep their meaning: `hospital` (registration),
`hotel` (check-in) and `service_hall` (government service hall) name the scenes the issue
calls hospital registration, hotel check-in and government service hall.
`service_hall_login` is the kiosk's read of the code for a login (`app.oidc.device`): the
kiosk learns nothing from the scan; what the holder approves on the phone reaches it through
OpenID Connect, under the app's own identifier.
"""

from __future__ import annotations

from typing import Any

SceneRow = dict[str, Any]

_BASE = ["masked_name", "pseudonym"]
_REAL_NAME = ["document_number", "document_type", "full_name", "pseudonym"]
"""Real-name registration required by law (hotels: public security; air: civil aviation)."""
_MEDICAL = ["age_band", "full_name", "masked_document_number", "pseudonym"]
_FARES = ["disability", "elderly_preferential", "transport_enabled", "veteran_preferential"]
_DISCOUNTS = ["disability", "elderly_preferential", "veteran_preferential"]


def _row(
    code: str,
    title_zh: str,
    title_en: str,
    domain: str,
    attributes: list[str],
    *,
    entitlements: list[str] | None = None,
    licences: list[str] | None = None,
) -> SceneRow:
    row: SceneRow = {
        "code": code,
        "title_zh": title_zh,
        "title_en": title_en,
        "domain": domain,
        "attributes": sorted(attributes),
        "entitlements": sorted(entitlements or []),
        "licences": sorted(licences or []),
    }
    return row


DEFAULT_SCENES: tuple[SceneRow, ...] = (
    _row("hospital", "医院挂号", "Hospital registration", "medical", _MEDICAL),
    _row("hospital_settlement", "医保结算", "Hospital settlement", "medical", _MEDICAL),
    _row("pharmacy", "定点药店购药", "Pharmacy purchase", "medical", _BASE),
    _row("bus", "公交乘车", "Bus boarding", "transport", _BASE, entitlements=_FARES),
    _row("metro", "地铁进站", "Metro gate", "transport", _BASE, entitlements=_FARES),
    _row("ferry", "轮渡乘船", "Ferry boarding", "transport", _BASE, entitlements=_FARES),
    _row("rail", "铁路进站", "Railway station gate", "transport", _BASE),
    _row("air_boarding", "民航登机", "Air boarding", "transport", _REAL_NAME),
    _row("library", "图书馆入馆借阅", "Library entry and loans", "culture", _BASE),
    _row("museum", "博物馆入馆", "Museum entry", "culture", _BASE, entitlements=_DISCOUNTS),
    _row("scenic_spot", "景区入园", "Scenic spot entry", "tourism", _BASE, entitlements=_DISCOUNTS),
    _row("sports_venue", "体育场馆入场", "Sports venue entry", "sports", _BASE),
    _row("hotel", "酒店入住登记", "Hotel check-in", "accommodation", _REAL_NAME),
    _row(
        "service_hall",
        "政务服务大厅",
        "Government service hall",
        "government",
        [*_BASE, "masked_document_number"],
    ),
    _row(
        "service_hall_login",
        "政务服务大厅自助终端登录",
        "Service-hall kiosk login",
        "government",
        ["pseudonym"],
    ),
    _row(
        "social_insurance",
        "社保业务办理",
        "Social-insurance business",
        "social_security",
        ["full_name", "masked_document_number", "pseudonym"],
    ),
    _row(
        "employment_services",
        "就业服务",
        "Employment services",
        "employment",
        [*_BASE, "age_band"],
    ),
    _row(
        "elderly_care",
        "养老服务",
        "Elderly care",
        "elderly_care",
        [*_BASE, "age_band"],
        entitlements=["disability", "elderly_preferential"],
    ),
    # E-licence presentations (issue 14): the licence types each scene may read from a
    # holder's licence QR; the card answer itself stays the base one.
    _row(
        "traffic_check",
        "交通执法查验",
        "Traffic police check",
        "transport",
        _BASE,
        licences=["driving_licence", "vehicle_registration"],
    ),
    _row(
        "car_rental_checkin",
        "租车取车",
        "Car rental check-in",
        "transport",
        _BASE,
        licences=["driving_licence"],
    ),
)
