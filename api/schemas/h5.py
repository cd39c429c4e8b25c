"""Bodies of the mobile pages' one JSON route: a channel's launch ticket."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import UtcDateTime
from app.h5.origins import MAX_ORIGINS

Origin = Annotated[
    str,
    StringConstraints(
        min_length=9,
        max_length=255,
        pattern=r"^https://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?/?$",
    ),
]
"""`https://host[:port]` (a trailing slash is dropped, the host put in lower case)."""


class LaunchTicketOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket": "lt_Q2hhbm5lbCBsYXVuY2ggdGlja2V0IGV4YW1wbGUgMDAwMDAw",
                    "url": "https://ecard.example/h5/launch?ticket=lt_Q2hhbm5lbCBsYXVuY2g",
                    "expires_at": "2026-12-02T08:01:00Z",
                }
            ]
        }
    )

    ticket: str
    url: str
    """Open this in the web view within `expires_at`, once."""
    expires_at: UtcDateTime


class ChannelOriginsIn(BaseModel):
    """Every origin the channel's web views load the pages from (replaces the list)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"origins": ["https://app.bank.example"]}]},
    )

    origins: list[Origin] = Field(max_length=MAX_ORIGINS)


class ChannelOriginsOut(BaseModel):
    channel_id: str
    origins: list[str]
