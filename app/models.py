"""Every table model, imported once so SQLModel.metadata is complete (Alembic, tests)."""

from app.accesslog.models import AccessLogEntry
from app.audit.models import AuditCheckpoint, AuditEvent
from app.banks.models import Bank, BankBinding, BankMigration, BankMigrationItem
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
from app.channels.models import ChannelLink, ChannelLinkRequest, ChannelRefreshToken
from app.clients.models import ApiClient, Organisation
from app.complaints.models import Complaint, ComplaintEvent
from app.consents.models import ConsentRequest
from app.departments.models import Issuer, IssuerKey
from app.family.models import FamilyLink, FamilyPresentation
from app.h5.models import ChannelOrigin
from app.licences.models import Licence
from app.misuse.models import CreditRecord, MisuseAlert
from app.notifications.models import Notification, NotificationDelivery
from app.oidc.models import OidcConsent, OidcRefreshToken, RelyingParty
from app.payments.models import Disbursement
from app.trust.models import TrustedIssuerRecord
from app.vault.models import VaultDocument, VaultShare

__all__ = [
    "AccessLogEntry",
    "ApiClient",
    "AuditCheckpoint",
    "AuditEvent",
    "Bank",
    "BankBinding",
    "BankMigration",
    "BankMigrationItem",
    "Card",
    "CardApplication",
    "CardEvent",
    "CardStatusIndex",
    "CatalogVersion",
    "ChannelLink",
    "ChannelLinkRequest",
    "ChannelOrigin",
    "ChannelRefreshToken",
    "Complaint",
    "ComplaintEvent",
    "ConsentRequest",
    "CreditRecord",
    "Device",
    "Disbursement",
    "FamilyLink",
    "FamilyPresentation",
    "Issuer",
    "IssuerKey",
    "Licence",
    "MisuseAlert",
    "Notification",
    "NotificationDelivery",
    "OidcConsent",
    "OidcRefreshToken",
    "Organisation",
    "Person",
    "RefreshToken",
    "RelyingParty",
    "RetiredCardNumber",
    "TrustedIssuerRecord",
    "VaultDocument",
    "VaultShare",
]
