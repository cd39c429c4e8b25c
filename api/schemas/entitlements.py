"""Bodies of the administrators' entitlement routes (GD7)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.catalog.scenes import Entitlement


class EntitlementGrant(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "elderly_preferential", "expires_at": "2027-12-31T16:00:00Z"}]
        },
    )

    kind: Entitlement
    expires_at: AwareDatetime = Field(description="When it stops showing; must be in the future")


class EntitlementResponse(BaseModel):
    card_number: str
    kind: Entitlement
    expires_at: datetime
    granted_by: str
