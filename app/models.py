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
from app.channels.models import ChannelLink, ChannelLinkRequest, ChannelRefreshToken
from app.clients.models import ApiClient, Organisation
from app.complaints.models import Complaint, ComplaintEvent
from app.family.models import FamilyLink, FamilyPresentation
from app.h5.models import ChannelOrigin
from app.misuse.models import CreditRecord, MisuseAlert
from app.notifications.models import Notification
from app.trust.models import TrustedIssuerRecord

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
    "ChannelLink",
    "ChannelLinkRequest",
    "ChannelOrigin",
    "ChannelRefreshToken",
    "Complaint",
    "ComplaintEvent",
    "CreditRecord",
    "Device",
    "FamilyLink",
    "FamilyPresentation",
    "MisuseAlert",
    "Notification",
    "Organisation",
    "Person",
    "RefreshToken",
    "RetiredCardNumber",
    "TrustedIssuerRecord",
]
