"""Request and response bodies of the scene catalog."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.catalog.models import CatalogVersion
from app.catalog.scenes import Attribute, Entitlement, Scene
from app.departments.types import DocumentFamily, types_of

SceneCodeText = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,12}$")]
CityCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
_LICENCE_TYPES = types_of(DocumentFamily.licence)


def _licence_type(code: str) -> str:
    if code not in _LICENCE_TYPES:
        raise ValueError(f"not an e-licence type; one of: {', '.join(_LICENCE_TYPES)}")
    return code


LicenceTypeCode = Annotated[
    str,
    AfterValidator(_licence_type),
    WithJsonSchema({"type": "string", "enum": _LICENCE_TYPES}),
]
Note = Annotated[str, StringConstraints(max_length=500)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
"""Not stripped: what the schema says of the length is what is checked."""

_HOTEL: dict[str, Any] = {
    "code": "hotel",
    "title_zh": "酒店入住登记",
    "title_en": "Hotel check-in",
    "domain": "accommodation",
    "attributes": ["document_number", "document_type", "full_name", "pseudonym"],
    "entitlements": [],
}
_TRAM: dict[str, Any] = {
    "code": "tram",
    "title_zh": "有轨电车乘车",
    "title_en": "Tram boarding",
    "domain": "transport",
    "attributes": ["masked_name", "pseudonym"],
    "entitlements": ["elderly_preferential", "transport_enabled"],
}


class SceneIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_TRAM]})

    code: SceneCodeText
    title_zh: Annotated[str, text_limits(100), TRIM]
    title_en: Annotated[str, text_limits(200), TRIM]
    domain: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    attributes: list[Attribute] = Field(
        max_length=16, description="Holder attributes the scene may receive (its allow-list)"
    )
    entitlements: list[Entitlement] = Field(
        default_factory=list, max_length=16, description="Entitlements the scene may read"
    )
    licences: list[LicenceTypeCode] = Field(
        default_factory=list,
        max_length=16,
        description="E-licence types the scene may read from a licence presentation QR",
    )

    def scene(self) -> Scene:
        return Scene(
            self.code,
            self.title_zh,
            self.title_en,
            self.domain,
            frozenset(self.attributes),
            frozenset(self.entitlements),
            licences=frozenset(self.licences),
        )


class SceneOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_HOTEL]})

    code: str
    title_zh: str
    title_en: str
    domain: str
    attributes: list[str]
    entitlements: list[str]
    licences: list[str] = Field(default_factory=list)


class CatalogSceneOut(SceneOut):
    region: str = Field(description="The province's code, or the city's for a supplement scene")


class SupplementRef(BaseModel):
    region: str
    version: int


class CatalogOut(BaseModel):
    """The catalog in effect for a region: the province's scenes plus the city's."""

    province: str
    version: int = Field(description="The provincial version in effect")
    region: str | None = Field(description="The region asked for (`?region=`), if any")
    supplements: list[SupplementRef] = Field(description="The city supplement included, if any")
    scenes: list[CatalogSceneOut]


class PublicVersionOut(BaseModel):
    number: int
    region: str
    kind: Literal["provincial", "supplement"]
    status: Literal["current", "approved", "superseded"]
    note: str
    based_on: int | None
    created_at: UtcDateTime
    decided_at: UtcDateTime | None
    scenes: list[SceneOut]


class VersionOut(BaseModel):
    """A version with who proposed or published it and who decided (administrators)."""

    number: int
    region: str
    kind: Literal["provincial", "supplement"]
    status: Literal["proposed", "approved", "rejected", "current", "superseded"]
    note: str
    based_on: int | None
    created_by: str
    created_at: UtcDateTime
    decided_by: str | None
    decided_at: UtcDateTime | None
    decision_reason: str | None
    scenes: list[SceneOut]

    @classmethod
    def of(cls, version: CatalogVersion) -> VersionOut:
        return cls.model_validate(version, from_attributes=True)


class ProvincialVersionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scenes": [_HOTEL], "note": "v2"}]}
    )

    scenes: list[SceneIn] = Field(min_length=1, max_length=200)
    note: Note = ""


class SupplementCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"region": "360100", "scenes": [_TRAM], "note": "Nanchang trams"}]
        },
    )

    region: CityCode = Field(description="The city (prefecture) code, e.g. 360100")
    scenes: list[SceneIn] = Field(min_length=1, max_length=50)
    note: Note = ""


class SupplementDecision(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"decision": "approve"}]}
    )

    decision: Literal["approve", "reject"]
    reason: Note | None = None
