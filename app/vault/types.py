"""The document types of the vault and their summary fields (GD15); extensible by adding an
entry to `DOCUMENT_TYPES`.

Each type lists the summary fields stored in the clear (`public`: said of the document, not of
the person: employer, occupation, level; these are searchable) and the personal ones (sealed,
never searchable). A field a type does not list is treated as personal: sealed by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class DocumentType:
    name: str
    label: str
    public: tuple[str, ...]
    personal: tuple[str, ...]
    holder_signs: bool = False
    """The holder signs it too (an electronic labour contract)."""


LABOUR_CONTRACT = "labour_contract"

DOCUMENT_TYPES: Mapping[str, DocumentType] = MappingProxyType(
    {
        t.name: t
        for t in (
            DocumentType(
                "employment_record",
                "就业登记",
                ("employer", "position", "started_on", "ended_on"),
                ("registration_number",),
            ),
            DocumentType(
                "unemployment_registration",
                "失业登记",
                ("registration_office", "registered_on"),
                ("registration_number", "reason"),
            ),
            DocumentType(
                "training_certificate",
                "职业培训合格证书",
                ("institution", "course", "hours", "completed_on"),
                ("certificate_number",),
            ),
            DocumentType(
                "skill_level_certificate",
                "职业技能等级证书",
                ("occupation", "level", "evaluation_body", "awarded_on"),
                ("certificate_number", "score"),
            ),
            DocumentType(
                "professional_title",
                "专业技术职称",
                ("title_name", "series", "level", "awarded_by", "awarded_on"),
                ("certificate_number",),
            ),
            DocumentType(
                "professional_qualification",
                "职业资格证书",
                ("qualification", "category", "awarded_by", "awarded_on"),
                ("certificate_number",),
            ),
            DocumentType(
                LABOUR_CONTRACT,
                "电子劳动合同",
                ("employer", "position", "work_location", "term_type", "starts_on", "ends_on"),
                ("salary", "employee_number"),
                holder_signs=True,
            ),
        )
    }
)

MAX_SUMMARY_FIELDS = 20
MAX_SUMMARY_VALUE_CHARS = 200


def split_summary(
    doc_type: DocumentType, summary: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(public fields, personal fields) of a summary; unknown fields count as personal."""
    public = {k: v for k, v in summary.items() if k in doc_type.public}
    personal = {k: v for k, v in summary.items() if k not in doc_type.public}
    return public, personal
