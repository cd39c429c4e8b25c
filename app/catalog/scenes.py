"""The scene catalog: where a card is scanned, and the attributes each scene may receive.

A scene is the purpose a scanner verifies for (PIPL: data leaves only for a stated purpose).
Every scene receives the holder's masked name and the organisation's pairwise pseudonym;
a few receive more. The table is code, not data: adding a scene or an attribute is a
reviewed change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Attribute(StrEnum):
    """Holder attributes a verify answer may carry for a valid card."""

    masked_name = "masked_name"
    pseudonym = "pseudonym"
    document_type = "document_type"


BASE_ATTRIBUTES = frozenset({Attribute.masked_name, Attribute.pseudonym})
"""What every scene receives, and what a scan without a scene receives."""


@dataclass(frozen=True, slots=True)
class Scene:
    code: str
    title: str
    attributes: frozenset[Attribute]


def _scene(code: str, title: str, *extra: Attribute) -> tuple[str, Scene]:
    return code, Scene(code, title, BASE_ATTRIBUTES.union(extra))


SCENES: Mapping[str, Scene] = MappingProxyType(
    dict(
        (
            _scene("hospital", "Hospital registration and payment"),
            _scene("bus", "Bus boarding"),
            _scene("metro", "Metro gate"),
            _scene("library", "Library entry and loans"),
            _scene("museum", "Museum entry"),
            _scene("scenic_spot", "Scenic spot entry"),
            _scene("hotel", "Hotel check-in", Attribute.document_type),
            _scene("service_hall", "Government service hall"),
            _scene("sports_venue", "Sports venue entry"),
            _scene("rail", "Railway station gate"),
        )
    )
)


class UnknownSceneError(ValueError):
    """A scene code that is not in the catalog."""

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = sorted(set(codes))
        super().__init__(f"unknown scene codes: {', '.join(self.codes)}")


def require_scenes(codes: Iterable[str]) -> list[str]:
    """The codes de-duplicated in catalog order.

    :raises UnknownSceneError: naming every code the catalog does not know.
    """
    wanted = set(codes)
    unknown = wanted.difference(SCENES)
    if unknown:
        raise UnknownSceneError(unknown)
    return [code for code in SCENES if code in wanted]
