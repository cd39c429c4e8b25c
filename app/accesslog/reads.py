"""Operator reads of a holder's record, put on the audit stream so they reach the access log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.accesslog.recorder import OPERATOR_READ_ACTION
from app.audit.log import record
from app.store import Store


async def record_operator_read(
    store: Store, reader: str, card_id: uuid.UUID, what: str, attributes: Sequence[str]
) -> None:
    """Audits that `reader` read `what` of the card (`attributes`: the data it showed).

    Called before the answer is sent: a read that cannot be audited is not answered.

    :raises StoreUnavailable: when the audit stream cannot be reached.
    """
    await record(
        store,
        OPERATOR_READ_ACTION,
        reader,
        str(card_id),
        {"what": what, "attributes": list(attributes)},
    )
