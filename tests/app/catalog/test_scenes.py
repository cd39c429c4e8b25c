"""The catalog snapshot: which scenes a region may use, and one scene per code."""

from __future__ import annotations

import pytest

from app.catalog.defaults import DEFAULT_SCENES
from app.catalog.scenes import (
    Attribute,
    CatalogSnapshot,
    Scene,
    Supplement,
    UnknownSceneError,
    city_of,
    default_snapshot,
)
from app.catalog.service import is_city_of

TRAM = Scene(
    "tram", "有轨电车", "Tram", "transport", frozenset({Attribute.pseudonym}), region="360100"
)


def with_tram() -> CatalogSnapshot:
    default = default_snapshot("360000")
    return CatalogSnapshot.build(
        "360000", 1, list(default.scenes.values()), [Supplement("360100", 2, {"tram": TRAM})]
    )


def test_a_county_belongs_to_its_city_and_other_codes_are_their_own() -> None:
    assert city_of("360102") == "360100"
    assert city_of("360100") == "360100"
    assert city_of("360000") == "360000"
    assert city_of("36") == "36"


def test_a_city_of_the_province_is_six_digits_under_it() -> None:
    assert is_city_of("360000", "360100")
    assert not is_city_of("360000", "360000")
    assert not is_city_of("360000", "360102")
    assert not is_city_of("360000", "110100")


def test_a_supplement_scene_is_required_in_its_city_only() -> None:
    catalog = with_tram()
    assert catalog.require_scenes(["tram", "bus", "tram"], "360102") == ["bus", "tram"]
    with pytest.raises(UnknownSceneError) as raised:
        catalog.require_scenes(["tram", "bar"], "360400")
    assert raised.value.codes == ["bar", "tram"]
    assert catalog.scene("tram") == TRAM  # the verify path needs no region


def test_the_stored_form_round_trips_for_every_default_scene() -> None:
    for row in DEFAULT_SCENES:
        assert Scene.of(row).as_row() == row
