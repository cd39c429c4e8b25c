"""Errors of the rate limits."""

from __future__ import annotations

from app.errors import DomainError


class RateLimited(DomainError):
    """Too many requests for one subject within the rule's window (429, `Retry-After`)."""

    code = "too-many-requests"
    title = "Too many requests"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after} s", retry_after=retry_after)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
