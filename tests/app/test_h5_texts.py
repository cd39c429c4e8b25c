"""Every value the pages put into a text key has its words: a missing one is a 500 for the
holder whose data has it (the access log of a card with a family link once was)."""

from __future__ import annotations

from api.h5.texts import CARE_TEXTS, TEXTS
from app.accesslog.models import AccessSource
from app.consents.models import ConsentStatus
from app.payments.models import PaymentKind
from app.vault.models import DocumentStatus


def test_every_key_built_from_a_value_has_words() -> None:
    built = [
        *(f"source_{source.value}" for source in AccessSource),
        *(f"consent_status_{status.value}" for status in ConsentStatus),
        *(f"payment_kind_{kind.value}" for kind in PaymentKind),
        *(f"document_status_{status.value}" for status in DocumentStatus),
        *(f"share_state_{state}" for state in ("active", "revoked", "expired", "used")),
    ]
    assert [key for key in built if key not in TEXTS] == []
    assert set(CARE_TEXTS) <= set(TEXTS)
