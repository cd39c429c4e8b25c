"""The card lifecycle as a table (JX9, SY5, GD5, SY17): pure, no I/O.

One card identity, several carriers. States are `CardStatus`; an action moves a card from one
state to the next only where `TRANSITIONS` says so, and only through the channels that
`CHANNELS` allows for it. Replacement (补换) gives the physical carrier a new number and leaves
the card active, whether it was active or lost; the e-card follows the card, not the number
(asked for online, the e-card is re-issued as well: `app.cards.lifecycle_service`).
Cancellation (注销) is terminal: no action leaves `cancelled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from app.cards.errors import ChannelNotAllowed, TransitionNotAllowed
from app.cards.models import CardStatus


class CardAction(StrEnum):
    report_loss = "report_loss"  # 挂失
    cancel_loss = "cancel_loss"  # 解挂
    replace_card = "replace"  # 补换 (`replace` would shadow str.replace)
    cancel = "cancel"  # 注销
    suspend = "suspend"  # SY17: suspension of functions for misuse
    unsuspend = "unsuspend"


class Channel(StrEnum):
    """Where a transition was asked for: the holder's app, or an operator at one of our desks."""

    online = "online"
    counter = "counter"
    hotline = "hotline"
    administration = "administration"


OPERATOR_CHANNELS = frozenset({Channel.counter, Channel.hotline, Channel.administration})

TRANSITIONS: Mapping[tuple[CardStatus, CardAction], CardStatus] = {
    (CardStatus.active, CardAction.report_loss): CardStatus.lost,
    (CardStatus.lost, CardAction.cancel_loss): CardStatus.active,
    (CardStatus.active, CardAction.replace_card): CardStatus.active,
    (CardStatus.lost, CardAction.replace_card): CardStatus.active,
    (CardStatus.active, CardAction.cancel): CardStatus.cancelled,
    (CardStatus.lost, CardAction.cancel): CardStatus.cancelled,
    (CardStatus.suspended, CardAction.cancel): CardStatus.cancelled,
    (CardStatus.active, CardAction.suspend): CardStatus.suspended,
    (CardStatus.suspended, CardAction.unsuspend): CardStatus.active,
}
"""(current state, action) -> next state; every pair not listed is refused."""

CHANNELS: Mapping[CardAction, frozenset[Channel]] = {
    CardAction.report_loss: frozenset(Channel),
    # Cancelling a loss needs the PIN online or an identity check face to face; a phone call
    # proves too little to put a possibly stolen card back in force.
    CardAction.cancel_loss: frozenset({Channel.online, Channel.counter, Channel.administration}),
    # A new physical card is handed out at a desk, or asked for by the holder in the app with
    # the PIN (GD5's online path): then the e-card is re-issued too (a new card handle).
    CardAction.replace_card: frozenset({Channel.online, Channel.counter, Channel.administration}),
    CardAction.cancel: frozenset({Channel.online, Channel.counter, Channel.administration}),
    CardAction.suspend: frozenset({Channel.administration}),
    CardAction.unsuspend: frozenset({Channel.administration}),
}
"""The channels through which each action may be asked for."""


def next_status(current: CardStatus, action: CardAction, channel: Channel) -> CardStatus:
    """The state `action` leads to from `current`.

    :raises ChannelNotAllowed: `action` cannot be asked for through `channel` (422).
    :raises TransitionNotAllowed: `action` is not allowed in `current` (409, names the state).
    """
    if channel not in CHANNELS[action]:
        raise ChannelNotAllowed(
            f"{action.value} cannot be done through the {channel.value} channel; allowed: "
            + ", ".join(sorted(CHANNELS[action])),
            action=action.value,
            channel=channel.value,
        )
    target = TRANSITIONS.get((current, action))
    if target is None:
        raise TransitionNotAllowed(current, action.value)
    return target
