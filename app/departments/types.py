"""The document types issuers may push, each in a family (`licence`: e-licences linked to the
card, `app.licences`; other families belong to other domains, e.g. the HR document vault).

One table for every family, so that the issuer registry, its OAuth scopes (`issue:<type>`)
and consent requests (which name types) speak one vocabulary. A domain adds its types here.
A type may mirror a card entitlement (GD7): while a valid document of that type is linked,
the holder has the entitlement (`app.licences.service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from app.catalog.scenes import Entitlement


class DocumentFamily(StrEnum):
    licence = "licence"
    vault = "vault"


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    family: DocumentFamily
    title_zh: str
    title_en: str
    entitlement: Entitlement | None = None
    """The card entitlement a valid document of this type grants (GD7), if any."""


_TYPES = (
    DocumentType("driving_licence", DocumentFamily.licence, "电子驾驶证", "E-driving licence"),
    DocumentType(
        "vehicle_registration", DocumentFamily.licence, "机动车行驶证", "Vehicle registration"
    ),
    DocumentType(
        "elderly_card",
        DocumentFamily.licence,
        "老年人优待证",
        "Elderly preferential card",
        Entitlement.elderly_preferential,
    ),
    DocumentType(
        "disability_certificate",
        DocumentFamily.licence,
        "残疾人证",
        "Disability certificate",
        Entitlement.disability,
    ),
    DocumentType(
        "veteran_certificate",
        DocumentFamily.licence,
        "优待证(退役军人)",
        "Veteran preferential certificate",
        Entitlement.veteran_preferential,
    ),
    DocumentType(
        "skill_certificate", DocumentFamily.licence, "职业技能等级证书", "Skill certificate"
    ),
    # The HR e-document vault (GD15); summary fields per type in app/vault/types.py.
    DocumentType("employment_record", DocumentFamily.vault, "就业登记", "Employment record"),
    DocumentType(
        "unemployment_registration",
        DocumentFamily.vault,
        "失业登记",
        "Unemployment registration",
    ),
    DocumentType(
        "training_certificate",
        DocumentFamily.vault,
        "职业培训合格证书",
        "Vocational training certificate",
    ),
    DocumentType(
        "skill_level_certificate",
        DocumentFamily.vault,
        "职业技能等级证书(评价)",
        "Skill level evaluation certificate",
    ),
    DocumentType("professional_title", DocumentFamily.vault, "专业技术职称", "Professional title"),
    DocumentType(
        "professional_qualification",
        DocumentFamily.vault,
        "职业资格证书",
        "Professional qualification",
    ),
    DocumentType("labour_contract", DocumentFamily.vault, "电子劳动合同", "Labour contract"),
)

DOCUMENT_TYPES: Mapping[str, DocumentType] = MappingProxyType({t.code: t for t in _TYPES})
ISSUE_SCOPE_PREFIX = "issue:"
"""An issuer client's OAuth scope per type it may push: `issue:driving_licence`."""


def issue_scope(code: str) -> str:
    return ISSUE_SCOPE_PREFIX + code


def types_of(family: DocumentFamily) -> list[str]:
    return [code for code, spec in DOCUMENT_TYPES.items() if spec.family is family]
