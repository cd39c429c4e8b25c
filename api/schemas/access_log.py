"""Bodies of the holder's access log and of offline scan uploads."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import Rfc3339DateTime, UtcDateTime
from api.schemas.verify import SCENE_PATTERN
from app.accesslog.models import AccessSource

SCAN_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_SCANS_PER_UPLOAD = 50
"""With the token's bound, an upload stays below SSC_MAX_REQUEST_BYTES' default (64 KiB)."""
SCANNED_TEXT_PATTERN = r"^[0-9A-Z $%*+./:-]{1,600}$"
"""An SSC1 token as scanned: base45 text (the longest token the codec reads is shorter)."""


class AccessLogEntryOut(BaseModel):
    id: str = Field(description="The entry's id (that of the audit event it records)")
    occurred_at: UtcDateTime
    source: AccessSource
    organisation_id: uuid.UUID | None
    organisation: str = Field(description="Who read: the organisation's name")
    venue: str = Field(description="The scanner (its venue) or the operator")
    region_code: str = Field(description="The organisation's city or region code")
    scene: str | None
    attributes: list[str] = Field(description="What was disclosed", examples=[["masked_name"]])
    outcome: str = Field(examples=["valid"])
    party: str | None = Field(
        default=None,
        description="Family service: the other person of a guardian's action, or the guardian "
        "who showed the ward's code at this scan (masked card number)",
        examples=["36******0754"],
    )


class AccessLogPageOut(BaseModel):
    entries: list[AccessLogEntryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page"
    )


class OfflineScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scan_id: Annotated[str, StringConstraints(pattern=SCAN_ID_PATTERN)] = Field(
        description="The scanner's own id of the scan; an upload is idempotent by it"
    )
    token: Annotated[str, StringConstraints(pattern=SCANNED_TEXT_PATTERN)] = Field(
        description="The scanned QR token"
    )
    scanned_at: Rfc3339DateTime
    scene: Annotated[str, StringConstraints(pattern=SCENE_PATTERN)] | None = None
    verdict: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = Field(
        description="The offline verifier's verdict; only `valid` scans disclosed anything"
    )


class OfflineScanUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scans: list[OfflineScanIn] = Field(min_length=1, max_length=MAX_SCANS_PER_UPLOAD)


class OfflineScanUploadResult(BaseModel):
    accepted: list[str] = Field(description="Scan ids that reach the holders' access logs")
    ignored: dict[str, str] = Field(description="Scan id -> why it does not")
