"""Bodies of channel apps, their links and their holder sessions."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PIN_PATTERN, UtcDateTime
from app.cards.models import CardStatus
from app.channels.models import ChannelType


class ChannelCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "赣服通 (city app)", "channel_type": "city_app"}]},
    )

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    channel_type: ChannelType


class ChannelOut(BaseModel):
    client_id: str
    name: str
    channel_type: str | None
    status: str
    created_at: UtcDateTime


class IssuedChannelOut(ChannelOut):
    client_secret: str = Field(description="Shown once; only its HMAC is stored")


class LinkRequestOut(BaseModel):
    request_id: uuid.UUID
    channel_id: str
    channel_name: str
    channel_type: str | None
    expires_at: UtcDateTime


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pin": "284617"}]})

    pin: str = Field(pattern=PIN_PATTERN, description="Your 6-digit PIN")


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256)


class ChannelSessionOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    subject: str = Field(description="The holder's pairwise id for this channel only")


class LinkedChannelOut(BaseModel):
    channel_id: str
    name: str
    channel_type: str | None
    linked_at: UtcDateTime
    last_used_at: UtcDateTime | None


class ChannelHolderOut(BaseModel):
    subject: str = Field(description="The holder's pairwise id for this channel only")
    status: CardStatus
    name: str = Field(description="Masked")


class ChannelQrOut(BaseModel):
    token: str
    expires_at: UtcDateTime
