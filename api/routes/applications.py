"""Card applications (holder side) and their approval (administrator side)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["applications"])
