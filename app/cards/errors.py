"""Errors of card applications and card issuance; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound


class InvalidApplication(InvalidRequest):
    """An application field that cannot be right (name, phone, bank, region)."""

    code = "invalid-application"
    title = "Invalid card application"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail, field=field)
        self.field = field


class ApplicationExists(Conflict):
    """The person already has an application waiting for a decision (one card per person)."""

    code = "application-exists"
    title = "An application for this person is already pending"


class CardExists(Conflict):
    """The person already holds a card (one card per person)."""

    code = "card-exists"
    title = "This person already has a card"


class ApplicationNotFound(NotFound):
    code = "application-not-found"
    title = "No such card application"


class ApplicationDecided(Conflict):
    """Approving or rejecting an application that was already decided."""

    code = "application-decided"
    title = "The application was already decided"


class TransitionNotAllowed(Conflict):
    """A lifecycle action that the card's current state does not allow."""

    code = "card-transition-not-allowed"
    title = "The card's current state does not allow this"

    def __init__(self, current: str, action: str) -> None:
        super().__init__(
            f"cannot {action.replace('_', ' ')}: the card is {current}",
            card_status=current,
            action=action,
        )
        self.current = current
        self.action = action


class ChannelNotAllowed(InvalidRequest):
    """A lifecycle action asked for through a channel that may not do it."""

    code = "channel-not-allowed"
    title = "This action cannot be done through this channel"


class CardNotFound(NotFound):
    code = "card-not-found"
    title = "No such card"


class CardNumberRetired(DomainError):
    """The number of a physical card that was replaced; it never identifies a card again."""

    code = "card-number-retired"
    title = "This card number was replaced"
    status = 410


class HolderNotVerified(Forbidden):
    """An operator acting for a holder gave a document number that is not the holder's."""

    code = "holder-not-verified"
    title = "The holder's identity could not be confirmed"


class StatusListFull(DomainError):
    """No free status list index could be drawn: `SSC_STATUS_LIST_SIZE` is too small for the
    cards times `SSC_STATUS_INDEX_POOL`. An operator's error: 507 Insufficient Storage, not
    503 (a retry cannot help until the list is enlarged) and not 500 (nothing is broken)."""

    code = "status-list-full"
    title = "The status list has no room for another card"
    status = 507


class EntitlementNotGranted(NotFound):
    """Withdrawing an entitlement the card's holder does not hold."""

    code = "entitlement-not-granted"
    title = "The holder has no such entitlement"


class InvalidEntitlement(InvalidRequest):
    """An entitlement that would be expired the moment it is granted."""

    code = "invalid-entitlement"
    title = "Invalid entitlement"
