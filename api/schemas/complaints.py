"""Request and response bodies of complaints."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, JsonValue, StringConstraints

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.complaints.models import ComplaintKind, ComplaintStatus, ComplaintStep
from app.complaints.service import TRACKING_LENGTH
from app.security.roles import REGION_PATTERN

Text = Annotated[str, text_limits(2000), TRIM]
Answer = Annotated[str, text_limits(4000), TRIM]
Contact = Annotated[str, text_limits(200, min_length=3), TRIM]
Region = Annotated[str, StringConstraints(pattern=REGION_PATTERN)]
AccessLogRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
TrackingNumber = Annotated[str, StringConstraints(pattern=rf"^[0-9A-Za-z]{{{TRACKING_LENGTH}}}$")]
_EXAMPLE: dict[str, JsonValue] = {
    "kind": "venue_refused_ecard",
    "details": "The museum ticket office refused my e-card and asked for the physical card.",
    "region_code": "360100",
}


class HolderComplaintCreate(BaseModel):
    """A holder's complaint: the answer reaches the holder in the app; a contact is optional."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    kind: ComplaintKind
    details: Text
    region_code: Region | None = None
    access_log_entry: AccessLogRef | None = None
    contact: Contact | None = None


class ComplaintCreate(HolderComplaintCreate):
    """Anyone's complaint or report: a contact (phone or e-mail) is required for the answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{**_EXAMPLE, "contact": "13800138000"}]},
    )

    contact: Contact


class ComplaintFiled(BaseModel):
    tracking_number: str
    """Keep it: it is the only way to read the complaint's status without logging in."""
    status: ComplaintStatus
    created_at: UtcDateTime


class TimelineEntry(BaseModel):
    step: ComplaintStep
    at: UtcDateTime
    note: str | None


class ComplaintOut(BaseModel):
    """What the complainant sees."""

    kind: ComplaintKind
    status: ComplaintStatus
    region_code: str | None
    access_log_entry: str | None
    details: str
    answer: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    timeline: list[TimelineEntry]


class AdminTimelineEntry(TimelineEntry):
    actor: str


class AdminComplaintOut(BaseModel):
    """What an administrator sees: the complainant's contact too, and who did each step."""

    id: uuid.UUID
    kind: ComplaintKind
    status: ComplaintStatus
    region_code: str | None
    access_log_entry: str | None
    filed_by_holder: bool
    details: str
    contact: str | None
    assignee: str | None
    answer: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    timeline: list[AdminTimelineEntry]


class ComplaintSummary(BaseModel):
    id: uuid.UUID
    kind: ComplaintKind
    status: ComplaintStatus
    region_code: str | None
    assignee: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ComplaintAssign(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "adm_0a1b2c3d4e5f60718293"}]}
    )

    assignee: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None
    """The administrator's client id; omitted: the caller."""


class ComplaintAnswer(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"answer": "The venue was reminded of the rules."}]},
    )

    answer: Answer


class ComplaintClose(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "resolved with the venue"}]}
    )

    note: Annotated[str, StringConstraints(max_length=2000)] | None = None
