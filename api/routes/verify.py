"""The verify hot path for venue scanners."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["verify"])
