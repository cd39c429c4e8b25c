"""Request and response bodies of card lifecycle actions and the holder's card history."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import PIN_PATTERN, UtcDateTime
from app.cards.lifecycle import CardAction, Channel
from app.cards.models import CardStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class OperatorChannel(StrEnum):
    """The desk an operator acts from (the holder's own app is the `online` channel)."""

    counter = "counter"
    hotline = "hotline"
    administration = "administration"


class PinConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pin": "284617"}]})

    pin: str = Field(pattern=PIN_PATTERN, description="The card's 6-digit PIN")


class OperatorAction(BaseModel):
    """`holder_document_number` is the identity check: required for a hotline loss report (the
    caller's document, on whose behalf the loss is reported) and for cancelling a loss."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "hotline",
                    "reason": "holder called 12333: wallet stolen on bus 232",
                    "holder_document_number": "11010519491231002X",
                },
                {"channel": "administration", "reason": "card lent to others (alert 8c1e)"},
            ]
        },
    )

    channel: OperatorChannel
    reason: Reason
    holder_document_number: str | None = Field(default=None, min_length=1, max_length=64)


class HolderTransitionResponse(BaseModel):
    action: CardAction
    from_status: CardStatus
    to_status: CardStatus
    at: UtcDateTime


class OperatorTransitionResponse(HolderTransitionResponse):
    channel: Channel
    card_number: str = Field(description="The card's number now; a new one after a replacement")


class CardHistoryEntry(BaseModel):
    action: CardAction
    from_status: CardStatus
    to_status: CardStatus
    channel: Channel
    by: str = Field(description="`holder` (you, in the app) or `operator`")
    reason: str | None
    at: UtcDateTime
