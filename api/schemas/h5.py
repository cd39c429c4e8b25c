"""Bodies of the mobile pages' one JSON route: a channel's launch ticket."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api.schemas.common import UtcDateTime


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
