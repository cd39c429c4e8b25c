"""Which persisted audit events the misuse watch counts as sightings of a card."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from app.audit.chain import AuditRecord, canonical_data
from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot, snapshot_card, snapshot_without_view
from app.misuse.watch import valid_scan

CARD = uuid.uuid4()
VENUE = uuid.uuid4()
AT = datetime(2026, 1, 1, 8, 0, 0, 250000, tzinfo=UTC)


def verify_event(action: str = "verify", **data: Any) -> AuditRecord:
    """A verify event as the audit consumer stores it: canonical data, store fields folded in."""
    fields = {
        "kid": "k1",
        "cti": "00ff",
        "scene": None,
        "org": str(VENUE),
        "outcome": "first",
        "status": CardSnapshot.of(CardStatus.active, CARD, "张*").encode().decode(),
        **data,
    }
    return AuditRecord("e1", AT, action, "scn_1", "", canonical_data(fields))


def test_a_first_claim_of_an_active_card_is_a_sighting() -> None:
    assert valid_scan(verify_event()) == (CARD, VENUE, AT.timestamp())


@pytest.mark.parametrize(
    "event",
    [
        verify_event(outcome="again"),
        verify_event(outcome="principal_rejected"),
        verify_event(outcome="FIRST"),
        verify_event(outcome=None, verdict="token_expired"),
        verify_event(outcome="again", scene={"outcome": "first"}),
        verify_event(status=CardSnapshot.of(CardStatus.lost, CARD, "张*").encode().decode()),
        verify_event(status=""),
        verify_event(status="garbage"),
        verify_event(org="not-a-uuid"),
        verify_event(action="card.lost"),
    ],
    ids=[
        "replayed",
        "scanner disabled",
        "another spelling",
        "refused before the claim",
        "first only in a nested value",
        "card lost",
        "no snapshot",
        "broken snapshot",
        "broken venue",
        "not a verify event",
    ],
)
def test_other_events_are_not_sightings(event: AuditRecord) -> None:
    assert valid_scan(event) is None


@pytest.mark.parametrize("data", ['{"outcome":"first"', '[{"outcome":"first"}]'])
def test_data_that_is_not_a_json_object_is_no_sighting(data: str) -> None:
    assert valid_scan(AuditRecord("e1", AT, "verify", "scn_1", "", data)) is None


def test_another_spelling_of_the_card_id_is_the_same_card() -> None:
    status = f"active|{str(CARD).upper()}|张*"
    assert valid_scan(verify_event(status=status)) == (CARD, VENUE, AT.timestamp())


def test_a_snapshot_names_its_status_and_card_as_hex() -> None:
    encoded = CardSnapshot.of(CardStatus.lost, CARD, "张*", view="sealed").encode().decode()
    assert snapshot_card(encoded) == ("lost", CARD.hex)
    assert snapshot_card(snapshot_without_view(encoded)) == ("lost", CARD.hex)
    with pytest.raises(ValueError):
        snapshot_card("active|not-a-card|张*")
