"""Every table model, imported once so SQLModel.metadata is complete (Alembic, tests)."""

from app.accesslog.models import AccessLogEntry
from app.audit.models import AuditCheckpoint, AuditEvent
from app.cards.models import (
    Card,
    CardApplication,
    CardEvent,
    CardStatusIndex,
    Device,
    Person,
    RefreshToken,
    RetiredCardNumber,
)
from app.catalog.models import CatalogVersion
from app.clients.models import ApiClient, Organisation
from app.complaints.models import Complaint, ComplaintEvent
from app.consents.models import ConsentRequest
from app.departments.models import Issuer, IssuerKey
from app.licences.models import Licence
from app.misuse.models import CreditRecord, MisuseAlert
from app.trust.models import TrustedIssuerRecord
from app.vault.models import VaultDocument, VaultShare

__all__ = [
    "AccessLogEntry",
    "ApiClient",
    "AuditCheckpoint",
    "AuditEvent",
    "Card",
    "CardApplication",
    "CardEvent",
    "CardStatusIndex",
    "CatalogVersion",
    "Complaint",
    "ComplaintEvent",
    "ConsentRequest",
    "CreditRecord",
    "Device",
    "Issuer",
    "IssuerKey",
    "Licence",
    "MisuseAlert",
    "Organisation",
    "Person",
    "RefreshToken",
    "RetiredCardNumber",
    "TrustedIssuerRecord",
    "VaultDocument",
    "VaultShare",
]
