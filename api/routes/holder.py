"""E-card activation, holder sessions, the holder's own card and QR code."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["holder"])
