"""What the pages do beyond the holder API's rules: the PIN before the first QR of the day."""

from __future__ import annotations

from app.holders.service import check_holder_pin, holder_card_and_device
from app.runtime import Runtime
from app.security.principals import HolderPrincipal


async def confirm_pin(runtime: Runtime, holder: HolderPrincipal, pin: str) -> None:
    """Checks the holder's PIN (the holder's own phone: the bound gate, with its lockout).

    The failure count is committed before the error is raised, as at login.

    :raises InvalidCredentials: a wrong PIN (401).
    :raises PinLocked: too many wrong PINs (423).
    :raises DeviceUnbound: the browser was unbound from the card (403).
    """
    async with runtime.database.session() as session:
        card, _ = await holder_card_and_device(session, holder)
        refusal = await check_holder_pin(session, runtime, card, pin, "h5_qr_of_the_day")
    if refusal is not None:
        raise refusal
