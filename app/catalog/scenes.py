"""The scene catalog as each worker holds it: an immutable snapshot, read without SQL.

A scene is the purpose a scanner verifies for (PIPL: data leaves only for a stated purpose):
its code, titles, service domain, the holder attributes it may receive and the entitlements
it may read. The catalog itself is data (`app.catalog.service`, table `catalog_versions`):
the province's current version plus each city's approved supplement. Every worker keeps a
`CatalogSnapshot` on its runtime, replaced (never mutated) when the catalog changes
(`app.catalog.background`); the verify path and scene validation read only that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from app.catalog.defaults import DEFAULT_SCENES, SceneRow


class Attribute(StrEnum):
    """Holder attributes a verify answer may carry for a valid card (the vocabulary of the
    catalog's allow-lists; what the verify answer carries today is `masked_name` and
    `pseudonym`, intersected with the scene's list)."""

    masked_name = "masked_name"
    full_name = "full_name"
    document_type = "document_type"
    document_number = "document_number"
    masked_document_number = "masked_document_number"
    age_band = "age_band"
    pseudonym = "pseudonym"


class Entitlement(StrEnum):
    """Entitlements (GD7) a scene may read, when it lists them."""

    elderly_preferential = "elderly_preferential"
    disability = "disability"
    veteran_preferential = "veteran_preferential"
    transport_enabled = "transport_enabled"


BASE_ATTRIBUTES = frozenset({Attribute.masked_name, Attribute.pseudonym})
"""What a scan without a scene receives."""
BASE_ATTRIBUTE_NAMES = tuple(sorted(attribute.value for attribute in BASE_ATTRIBUTES))
"""The same as a scan's audit event names them."""


@dataclass(frozen=True, slots=True)
class Scene:
    code: str
    title_zh: str
    title_en: str
    domain: str
    attributes: frozenset[Attribute]
    entitlements: frozenset[Entitlement] = frozenset()
    region: str = ""
    """The province's code, or the city's for a scene of a city supplement."""
    licences: frozenset[str] = frozenset()
    """The e-licence types (`app.departments.types`) a scanner of this scene may read from a
    holder's licence presentation QR; none for most scenes."""
    attribute_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """`attributes` sorted, as a scan's audit event names them for the holder's access log
    (computed once per catalog, not once per scan)."""
    opens_view: bool = field(init=False, repr=False, compare=False)
    """Whether a scan for this scene receives anything beyond the masked name and the
    pseudonym: the verify path then opens the card's sealed attribute view."""

    def __post_init__(self) -> None:
        names = tuple(sorted(attribute.value for attribute in self.attributes))
        object.__setattr__(self, "attribute_names", names)
        opens_view = bool(self.entitlements) or not self.attributes <= BASE_ATTRIBUTES
        object.__setattr__(self, "opens_view", opens_view)

    @property
    def title(self) -> str:
        return self.title_en

    @classmethod
    def of(cls, row: Mapping[str, Any], region: str = "") -> Scene:
        """A scene from its stored form (`as_row`); unknown attribute names are refused."""
        return cls(
            code=str(row["code"]),
            title_zh=str(row["title_zh"]),
            title_en=str(row["title_en"]),
            domain=str(row["domain"]),
            attributes=frozenset(Attribute(name) for name in row.get("attributes", ())),
            entitlements=frozenset(Entitlement(name) for name in row.get("entitlements", ())),
            region=region,
            licences=frozenset(str(name) for name in row.get("licences", ())),
        )

    def as_row(self) -> SceneRow:
        """The stored (and published) form, lists sorted so equal scenes serialise equally."""
        row: SceneRow = {
            "code": self.code,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "domain": self.domain,
            "attributes": sorted(self.attributes),
            "entitlements": sorted(self.entitlements),
            "licences": sorted(self.licences),
        }
        return row


class UnknownSceneError(ValueError):
    """A scene code that is not in the catalog."""

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = sorted(set(codes))
        super().__init__(f"unknown scene codes: {', '.join(self.codes)}")


@dataclass(frozen=True, slots=True)
class Supplement:
    """A city's approved supplement: scenes only that city's organisations may use."""

    region: str
    version: int
    scenes: Mapping[str, Scene]


def city_of(region_code: str) -> str:
    """The city (prefecture) of a 6-digit administrative division code: 360102 -> 360100.
    Other codes are their own region."""
    if len(region_code) == 6 and region_code.isdigit() and not region_code.endswith("0000"):
        return region_code[:4] + "00"
    return region_code


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The catalog in effect: the province's current version and the cities' approved
    supplements. Immutable: a change builds a new snapshot."""

    province: str
    version: int
    scenes: Mapping[str, Scene]
    supplements: Mapping[str, Supplement] = field(default_factory=dict)
    _all: Mapping[str, Scene] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        province: str,
        version: int,
        scenes: Sequence[Scene],
        supplements: Sequence[Supplement] = (),
    ) -> CatalogSnapshot:
        provincial = {scene.code: scene for scene in scenes}
        everything = dict(provincial)
        for supplement in supplements:
            for code, scene in supplement.scenes.items():
                everything.setdefault(code, scene)  # the province's scene wins a clash
        return cls(
            province=province,
            version=version,
            scenes=MappingProxyType(provincial),
            supplements=MappingProxyType({item.region: item for item in supplements}),
            _all=MappingProxyType(everything),
        )

    def scene(self, code: str) -> Scene | None:
        """The scene of this code, provincial or of any city's supplement (codes are unique
        across the whole catalog: `app.catalog.service` refuses a clash)."""
        return self._all.get(code)

    def codes(self) -> frozenset[str]:
        return frozenset(self._all)

    def for_region(self, region: str | None) -> list[Scene]:
        """The province's scenes, then those of the region's city supplement (if approved)."""
        scenes = list(self.scenes.values())
        supplement = None if region is None else self.supplements.get(city_of(region))
        if supplement is not None:
            scenes.extend(s for code, s in supplement.scenes.items() if code not in self.scenes)
        return scenes

    def require_scenes(self, codes: Iterable[str], region: str | None = None) -> list[str]:
        """The codes de-duplicated in catalog order, from the scenes `region` may use.

        :raises UnknownSceneError: naming every code the region's catalog does not know.
        """
        wanted = set(codes)
        available = [scene.code for scene in self.for_region(region)]
        unknown = wanted.difference(available)
        if unknown:
            raise UnknownSceneError(unknown)
        return [code for code in available if code in wanted]


def default_snapshot(province: str) -> CatalogSnapshot:
    """The built-in default catalog (version 1): what a worker holds until it has read the
    database, and what `app.catalog.service` seeds."""
    return CatalogSnapshot.build(province, 1, [Scene.of(row, province) for row in DEFAULT_SCENES])


DEFAULT_CATALOG = default_snapshot("360000")
"""The default catalog of the default province (`SSC_ISSUER`), for callers without a runtime."""
SCENES: Mapping[str, Scene] = DEFAULT_CATALOG.scenes
"""The default catalog's scenes by code (the documented scene codes of the API schema)."""


def default_attribute_names(code: str | None) -> tuple[str, ...]:
    """What a scan for `code` discloses under the default catalog (the base attributes for no
    scene or one it lacks): the access log's reading of a scan event that names no list."""
    scene = None if code is None else SCENES.get(code)
    return BASE_ATTRIBUTE_NAMES if scene is None else scene.attribute_names


def require_scenes(codes: Iterable[str]) -> list[str]:
    """`DEFAULT_CATALOG.require_scenes` (province-wide scenes only)."""
    return DEFAULT_CATALOG.require_scenes(codes)
