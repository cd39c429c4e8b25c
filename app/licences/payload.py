"""What a department signs for an e-licence: the JSON object inside the JWS (see
`docs/licences.md`), checked after its signature."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from app.licences.errors import InvalidLicence
from app.licences.models import LicenceStatus

Text = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


class LicenceHolder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_type: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    document_number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    name: Text


class LicencePayload(BaseModel):
    """One version of one licence, as its department signed it."""

    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """The pushing issuer's code: a document signed for one issuer is not another's."""
    document_id: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ]
    version: int = Field(strict=True, ge=1, le=2**31 - 1)
    type: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    holder: LicenceHolder
    number: Text
    category: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    """The class or category (driving licence class `C1`, vehicle type, skill level)."""
    valid_from: date
    valid_until: date | None = None
    status: LicenceStatus

    @classmethod
    def of(cls, payload: dict[str, Any]) -> LicencePayload:
        """:raises InvalidLicence: naming every fault."""
        try:
            parsed = cls.model_validate(payload)
        except ValidationError as error:
            faults = "; ".join(
                f"{'.'.join(str(part) for part in fault['loc']) or '(document)'}: {fault['msg']}"
                for fault in error.errors()
            )
            raise InvalidLicence(f"the signed licence is not valid: {faults}") from None
        if parsed.valid_until is not None and parsed.valid_until < parsed.valid_from:
            raise InvalidLicence("valid_until is before valid_from")
        return parsed
