"""Organisations (venues) and API clients (scanners), and the OAuth2 token endpoint."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["clients"])
