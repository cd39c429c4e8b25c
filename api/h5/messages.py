"""What a refused page action tells the holder, and times as the holder reads them: shared
by every page module (one wording for one refusal)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.h5.pages import PageContext
from app.cards.errors import TransitionNotAllowed
from app.china_time import CHINA_STANDARD_TIME
from app.errors import DomainError
from app.holders.errors import (
    CardNotActive,
    DeviceNotActivated,
    DeviceUnbound,
    InvalidCredentials,
    PinLocked,
)
from app.ratelimits.errors import RateLimited
from app.security.errors import WeakPinError


def refusal(context: PageContext, error: DomainError) -> str:
    """What the holder is told when a rule refuses (never which credential was wrong)."""
    if isinstance(error, PinLocked):
        until = error.unlocks_at.astimezone(CHINA_STANDARD_TIME).strftime("%H:%M")
        return context.t("error_locked", until=until)
    if isinstance(error, DeviceNotActivated):
        return context.t("error_not_activated")
    if isinstance(error, DeviceUnbound):
        return context.t("error_unbound")
    if isinstance(error, InvalidCredentials):
        return context.t("error_pin" if context.page is not None else "error_credentials")
    if isinstance(error, WeakPinError):
        return context.t("error_weak_pin")
    if isinstance(error, TransitionNotAllowed | CardNotActive):
        return context.t("error_transition")
    if isinstance(error, RateLimited):
        return context.t("error_too_many")
    if error.status == 422:
        return context.t("error_form")
    return context.t("error_generic")


def local_time(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")
