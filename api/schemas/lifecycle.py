"""Request and response bodies of card lifecycle actions and the holder's card history."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PIN_PATTERN, TRIM, UtcDateTime, text_limits
from app.cards.documents import DocumentType
from app.cards.lifecycle import CardAction, Channel
from app.cards.models import CardStatus

Reason = Annotated[str, text_limits(500), TRIM]
"""Free text with something visible in it, as the schema states (`text_limits`)."""


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


class OperatorPinResetRequest(BaseModel):
    """A PIN reset at the counter: the operator checks the holder's identity document face to
    face and types its type and number; the holder types the new PIN on the PIN pad."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_type": "resident_id",
                    "document_number": "11010519491231002X",
                    "new_pin": "730415",
                    "reason": "holder forgot the PIN; resident ID card checked at counter 3",
                }
            ]
        },
    )

    document_type: DocumentType
    document_number: str = Field(min_length=1, max_length=64)
    new_pin: str = Field(pattern=PIN_PATTERN, description="The new 6-digit PIN")
    reason: Reason


class HolderReplacementRequest(BaseModel):
    """An online replacement (补换) asked for by the holder, confirmed with the PIN."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"pin": "284617", "reason": "card damaged: chip no longer read"}]
        },
    )

    pin: str = Field(pattern=PIN_PATTERN, description="The card's 6-digit PIN")
    reason: Reason


class HolderTransitionResponse(BaseModel):
    action: CardAction
    from_status: CardStatus
    to_status: CardStatus
    at: UtcDateTime


class HolderReplacementResponse(HolderTransitionResponse):
    card_number: str = Field(description="The card's new number (the old one is dead forever)")


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
