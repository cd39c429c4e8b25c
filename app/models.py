"""Every table model, imported once so SQLModel.metadata is complete (Alembic, tests)."""

from app.audit.models import AuditEvent
from app.cards.models import Card, CardApplication, Device, Person, RefreshToken
from app.clients.models import ApiClient, Organisation

__all__ = [
    "ApiClient",
    "AuditEvent",
    "Card",
    "CardApplication",
    "Device",
    "Organisation",
    "Person",
    "RefreshToken",
]
