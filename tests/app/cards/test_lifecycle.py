"""The card lifecycle table: every (state, action) pair, and the channels of each action."""

from __future__ import annotations

import itertools

import pytest

from app.cards.errors import ChannelNotAllowed, TransitionNotAllowed
from app.cards.lifecycle import CHANNELS, TRANSITIONS, CardAction, Channel, next_status
from app.cards.models import CardStatus

S, A = CardStatus, CardAction
EXPECTED: dict[tuple[CardStatus, CardAction], CardStatus] = {
    (S.active, A.report_loss): S.lost,
    (S.lost, A.cancel_loss): S.active,
    (S.active, A.replace_card): S.active,
    (S.lost, A.replace_card): S.active,
    (S.active, A.cancel): S.cancelled,
    (S.lost, A.cancel): S.cancelled,
    (S.suspended, A.cancel): S.cancelled,
    (S.active, A.suspend): S.suspended,
    (S.suspended, A.unsuspend): S.active,
}
"""Written out by hand from the lifecycle rules, independently of the table under test."""

ALL_PAIRS = list(itertools.product(CardStatus, CardAction))


def allowed_channel(action: CardAction) -> Channel:
    return Channel.administration if Channel.administration in CHANNELS[action] else Channel.online


class TestEveryTransition:
    @pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=str)
    def test_allowed_pairs_lead_to_their_state_and_others_are_refused_naming_the_state(
        self, state: CardStatus, action: CardAction
    ) -> None:
        channel = allowed_channel(action)
        if (state, action) in EXPECTED:
            assert next_status(state, action, channel) is EXPECTED[(state, action)]
        else:
            with pytest.raises(TransitionNotAllowed) as refused:
                next_status(state, action, channel)
            assert refused.value.status == 409
            assert refused.value.extensions["card_status"] == state.value
            assert state.value in refused.value.detail

    def test_the_table_is_exactly_the_expected_one(self) -> None:
        assert dict(TRANSITIONS) == EXPECTED

    def test_cancelled_is_terminal(self) -> None:
        assert not [action for (state, action) in TRANSITIONS if state is CardStatus.cancelled]


class TestChannels:
    @pytest.mark.parametrize("action", [A.suspend, A.unsuspend])
    @pytest.mark.parametrize("channel", [Channel.online, Channel.counter, Channel.hotline])
    def test_only_administration_suspends(self, action: CardAction, channel: Channel) -> None:
        with pytest.raises(ChannelNotAllowed):
            next_status(CardStatus.active, action, channel)

    def test_a_hotline_call_cannot_cancel_a_loss(self) -> None:
        with pytest.raises(ChannelNotAllowed):
            next_status(CardStatus.lost, A.cancel_loss, Channel.hotline)

    @pytest.mark.parametrize("channel", [Channel.online, Channel.counter, Channel.administration])
    def test_a_replacement_is_asked_for_at_a_desk_or_online(self, channel: Channel) -> None:
        assert next_status(CardStatus.lost, A.replace_card, channel) is CardStatus.active

    def test_a_phone_call_cannot_replace_a_card(self) -> None:
        with pytest.raises(ChannelNotAllowed):
            next_status(CardStatus.active, A.replace_card, Channel.hotline)

    @pytest.mark.parametrize("channel", list(Channel))
    def test_a_loss_can_be_reported_through_every_channel(self, channel: Channel) -> None:
        assert next_status(CardStatus.active, A.report_loss, channel) is CardStatus.lost

    def test_the_channel_is_checked_before_the_state(self) -> None:
        with pytest.raises(ChannelNotAllowed):
            next_status(CardStatus.cancelled, A.suspend, Channel.counter)
