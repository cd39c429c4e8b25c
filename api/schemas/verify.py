"""Request and response bodies of `POST /v1/verify` (the scanner vendors' contract)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from token_service import Verdict

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "SSC1:6BFOXN*TS0BI$ZDFRH...", "scene": "metro"}]},
    )

    token: str = Field(description="The scanned string; anything unreadable is `malformed`")
    scene: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = Field(
        default=None, description="Catalog scene code scanned for; decides the attributes"
    )


class Holder(BaseModel):
    masked_name: str = Field(examples=["张*三"])
    pseudonym: str = Field(
        description="Pairwise: stable for one organisation, unlinkable across organisations",
        examples=["q0bW8m1t3rP6sC9yZ2xLkA"],
    )


class VerifyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "verdict": "valid",
                    "checked_at": "2026-11-26T08:30:00.123Z",
                    "kid": "q3Lk9xY0AbE",
                    "iss": "360000",
                    "scene": "metro",
                    "holder": {"masked_name": "张*三", "pseudonym": "q0bW8m1t3rP6sC9yZ2xLkA"},
                },
                {
                    "verdict": "replayed",
                    "checked_at": "2026-11-26T08:30:01.004Z",
                    "kid": "q3Lk9xY0AbE",
                    "iss": "360000",
                    "scene": "metro",
                },
            ]
        }
    )

    verdict: Verdict
    checked_at: str = Field(description="ISO 8601, UTC")
    kid: str | None = Field(description="Signing key id, base64url; null when unreadable")
    iss: str | None
    scene: str | None
    holder: Holder | None = Field(default=None, description="Only with verdict `valid`")
